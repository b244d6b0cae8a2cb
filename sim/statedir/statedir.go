// Package statedir is gitopsim's durable state directory (up --state-dir):
// one directory that holds everything needed to read itself back, so that a
// restart with a fresh work dir (after make clean) finds all it had.
//
// It holds a format file (gitopsim-state.json, with a version that older
// and newer gitopsims check), the 32-byte key that encrypts the state's
// secrets (state.key, unless the user keeps the key elsewhere, as a cloud
// keeps it in a vault), and a lock that one process holds while it uses the
// directory. Components keep their data in subdirectories (arm/, git/,
// fleet/).
package statedir

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/gitopsim/gitopsim/sim/internal/atomicfile"
)

// Format is the layout version this gitopsim writes and reads. Version 0 is
// the layout before the format file existed, whose key lived in the work dir
// (WORKDIR/arm/state.key); Open moves that key in.
const Format = 1

const (
	formatFile = "gitopsim-state.json"
	keyFile    = "state.key"
	lockFile   = "LOCK"
	portsFile  = "ports.json"
	keySize    = 32
)

// ErrInUse is returned when another process holds the directory.
var ErrInUse = errors.New("state dir in use")

// Options configure Open.
type Options struct {
	// Dir is the state directory; made when missing. Required.
	Dir string
	// KeyFile holds the key instead of Dir/state.key: made (mode 0600)
	// when missing.
	KeyFile string
	// LegacyKey is where a format-0 directory's key was kept (the work
	// dir's arm/state.key); Open moves it in. Optional.
	LegacyKey string
	// Logger for what Open did (a key made or moved in); nil discards.
	Logger *slog.Logger
}

// Dir is an open state directory, locked for this process until Close.
type Dir struct {
	path    string
	key     []byte
	keyPath string
	lock    *os.File
}

type formatDoc struct {
	Format int `json:"format"`
}

// Open locks the directory, checks its format, and loads (or makes) its key.
func Open(o Options) (*Dir, error) {
	if o.Dir == "" {
		return nil, errors.New("statedir: no directory")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	path, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	d := &Dir{path: path}
	if d.lock, err = lock(path); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = d.Close()
		}
	}()
	format, err := readFormat(path)
	if err != nil {
		return nil, err
	}
	d.keyPath = filepath.Join(path, keyFile)
	if o.KeyFile != "" {
		if d.keyPath, err = filepath.Abs(o.KeyFile); err != nil {
			return nil, fmt.Errorf("state key: %w", err)
		}
	}
	if d.key, err = readKey(d.keyPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if d.key == nil {
		if err := d.makeKey(format, o, log); err != nil {
			return nil, err
		}
	}
	if format < Format {
		doc, _ := json.Marshal(formatDoc{Format: Format})
		if err := atomicfile.WriteFile(filepath.Join(path, formatFile), append(doc, '\n'), 0o600); err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
	}
	ok = true
	return d, nil
}

// makeKey moves a format-0 directory's key in, or makes a new key for a
// directory without encrypted state.
func (d *Dir) makeKey(format int, o Options, log *slog.Logger) error {
	if format == 0 && hasState(d.path) {
		if o.LegacyKey == "" {
			return fmt.Errorf("state dir %s was written by an older gitopsim that kept its key in the work dir (arm/state.key); pass that file with --state-key", d.path)
		}
		k, err := readKey(o.LegacyKey)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("state dir %s was written by an older gitopsim that kept its key in the work dir, and %s is gone; restore it or pass it with --state-key", d.path, o.LegacyKey)
		}
		if err != nil {
			return err
		}
		if err := writeKey(d.keyPath, k); err != nil {
			return err
		}
		log.Info("state key moved into the state dir; the work dir is no longer needed to read it", "from", o.LegacyKey, "to", d.keyPath)
		d.key = k
		return nil
	}
	if hasState(d.path) && d.keyPath != filepath.Join(d.path, keyFile) {
		return fmt.Errorf("state key %s does not exist, and state dir %s holds state encrypted with another key", d.keyPath, d.path)
	}
	if hasState(d.path) {
		return fmt.Errorf("state dir %s holds encrypted state but its key %s is missing; restore the key, or pass it with --state-key", d.path, d.keyPath)
	}
	k := make([]byte, keySize)
	if _, err := rand.Read(k); err != nil {
		return fmt.Errorf("state key: %w", err)
	}
	if err := writeKey(d.keyPath, k); err != nil {
		return err
	}
	log.Info("state key made", "file", d.keyPath)
	d.key = k
	return nil
}

// Ports are the loopback ports of the last run, by name ("arm",
// "git-ssh", ...): URLs stored in the state (a configuration's repository
// URL) name them, so a restart should listen on them again. None were
// saved: an empty map. A file that does not parse: an empty map and an
// error naming it (the ports are a convenience, not state).
func (d *Dir) Ports() (map[string]int, error) {
	path := filepath.Join(d.path, portsFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]int{}, nil
	}
	if err != nil {
		return map[string]int{}, fmt.Errorf("statedir: %w", err)
	}
	ports := map[string]int{}
	if err := json.Unmarshal(b, &ports); err != nil {
		return map[string]int{}, fmt.Errorf("statedir: %s: %w", path, err)
	}
	return ports, nil
}

// SavePorts records this run's ports for the next.
func (d *Dir) SavePorts(ports map[string]int) error {
	b, err := json.Marshal(ports)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(d.path, portsFile), append(b, '\n'), 0o600)
}

// Path is the directory's absolute path.
func (d *Dir) Path() string { return d.path }

// Sub is the path of a component's subdirectory.
func (d *Dir) Sub(name string) string { return filepath.Join(d.path, name) }

// Key is a copy of the key that encrypts the state's secrets.
func (d *Dir) Key() []byte { return append([]byte(nil), d.key...) }

// KeyFile is where the key is kept, for messages.
func (d *Dir) KeyFile() string { return d.keyPath }

// Close releases the lock. The process's exit releases it too, however
// it ends.
func (d *Dir) Close() error {
	if d.lock == nil {
		return nil
	}
	err := d.lock.Close()
	d.lock = nil
	return err
}

// lock takes an exclusive flock on DIR/LOCK and writes this pid into it.
func lock(dir string) (*os.File, error) {
	p := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(p)
		_ = f.Close()
		holder := strings.TrimSpace(string(b))
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if _, perr := strconv.Atoi(holder); perr == nil {
				return nil, fmt.Errorf("%w: %s is used by another gitopsim (pid %s); stop it, or give this one another --state-dir", ErrInUse, dir, holder)
			}
			return nil, fmt.Errorf("%w: %s is used by another gitopsim; stop it, or give this one another --state-dir", ErrInUse, dir)
		}
		return nil, fmt.Errorf("state dir lock %s: %w", p, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

func readFormat(dir string) (int, error) {
	p := filepath.Join(dir, formatFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("state dir: %w", err)
	}
	var doc formatDoc
	if err := json.Unmarshal(b, &doc); err != nil || doc.Format < 1 {
		return 0, fmt.Errorf("state dir: %s is not a gitopsim state format file (want {\"format\": N}); it was not changed", p)
	}
	if doc.Format > Format {
		return 0, fmt.Errorf("state dir %s was written by a newer gitopsim (format %d; this one reads up to %d); use that version, or another --state-dir", dir, doc.Format, Format)
	}
	return doc.Format, nil
}

// ComponentKey is the key of a component (ARM, the git server) given a
// state dir of its own without Open: read at path; when missing, moved
// in from legacy (where an older gitopsim kept it; "" for none) if
// sealed, the component's encrypted file, exists; made (mode 0600) when
// sealed does not. Encrypted state whose key is lost is refused, never
// given a new key.
func ComponentKey(path, legacy, sealed string) ([]byte, error) {
	k, err := readKey(path)
	if !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	if _, err := os.Stat(sealed); err == nil {
		if legacy == "" {
			return nil, fmt.Errorf("%s exists but its key %s does not; restore the key", sealed, path)
		}
		k, err := readKey(legacy)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s exists but its key %s does not (nor %s, where older gitopsims kept it); restore the key", sealed, path, legacy)
		}
		if err != nil {
			return nil, err
		}
		return k, writeKey(path, k)
	}
	k = make([]byte, keySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("state key: %w", err)
	}
	return k, writeKey(path, k)
}

func writeKey(path string, k []byte) error {
	if err := atomicfile.WriteFile(path, k, 0o600); err != nil {
		return fmt.Errorf("state key: %w", err)
	}
	return nil
}

func readKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("state key: %w", err)
	}
	if len(b) != keySize {
		return nil, fmt.Errorf("state key %s: %d bytes, want %d", path, len(b), keySize)
	}
	return b, nil
}

// hasState says whether the directory holds data encrypted with a key:
// the components' encrypted files are named *.bin, one level down
// (arm/arm-state.bin, git/identities.bin).
func hasState(dir string) bool {
	bins, _ := filepath.Glob(filepath.Join(dir, "*", "*.bin"))
	return len(bins) > 0
}
