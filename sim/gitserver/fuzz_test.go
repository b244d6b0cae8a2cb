package gitserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func FuzzPktLine(f *testing.F) {
	for _, seed := range []string{"0000", "0009hello0000", "000ahello\n", "fff", "0003", "ffff", "0004", "zzzz", "0032want 0123456789012345678901234567890123456789\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pr := newPktReader(bytes.NewReader(data))
		want := bytes.Clone(data)
		// Re-encode what was read, in order: it must be exactly the bytes
		// the reader consumed.
		var again bytes.Buffer
		pw := pktWriter{&again}
		consumed := 0
		for range 1000 {
			line, flush, err := pr.next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, errPktFormat) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				break
			}
			// The writer spells lengths in lower-case hex; the reader
			// accepts either case.
			copy(want[consumed:], bytes.ToLower(data[consumed:consumed+4]))
			consumed += 4 + len(line)
			if flush {
				pw.flush()
			} else if err := pw.line(string(line)); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(again.Bytes(), want[:consumed]) {
			t.Fatalf("re-encoded %q, consumed %q", again.Bytes(), want[:consumed])
		}
	})
}

func FuzzUploadRequest(f *testing.F) {
	h := strings.Repeat("ab", 20)
	for _, seed := range []string{
		"0032want " + h + "\n0000",
		"0045want " + h + " side-band-64k ofs-delta\n0035shallow " + h + "\n000ddeepen 1\n0000",
		"0000", "", "0032want xyz\n0000", "000ddeepen 0\n0000", "0018deepen-since 123\n0000",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := readUploadRequest(newPktReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		if req != nil && len(req.wants) == 0 {
			t.Fatal("a request without wants")
		}
		if req != nil && req.depth < 0 {
			t.Fatal("negative depth")
		}
	})
}

// FuzzReceivePack feeds arbitrary push streams to a repo: no panic, and no
// ref moves unless the stream really was a valid push.
func FuzzReceivePack(f *testing.F) {
	srv, err := New(Options{Workdir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	repo, err := srv.CreateRepo("fuzz/repo", RepoOptions{})
	if err != nil {
		f.Fatal(err)
	}
	zero := strings.Repeat("0", 40)
	h := strings.Repeat("ab", 20)
	for _, seed := range []string{
		"0000",
		"0077" + zero + " " + h + " refs/heads/main\x00report-status atomic\n0000PACK\x00\x00\x00\x02\x00\x00\x00\x00",
		"0067" + h + " " + zero + " refs/heads/main\x00report-status delete-refs\n0000",
		"0010garbage line0000",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		_ = srv.receivePack(context.Background(), repo, bytes.NewReader(data), &out, "fuzz")
		if _, err := srv.Ref("fuzz/repo", "main"); err == nil {
			t.Fatalf("a fuzzed push created main from %q", data)
		}
	})
}
