package sealed

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTripAndRefusals(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	b, err := New(key, "GITOPSIM-TEST-1\n")
	if err != nil {
		t.Fatal(err)
	}
	data, err := b.Seal([]byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("secret")) {
		t.Error("the content is readable in the file")
	}
	if got, err := b.Open(data); err != nil || string(got) != "secret" {
		t.Errorf("Open = %q, %v", got, err)
	}
	other, _ := New(bytes.Repeat([]byte{2}, 32), "GITOPSIM-TEST-1\n")
	foreign, _ := New(key, "GITOPSIM-OTHER-1\n")
	flipped := bytes.Clone(data)
	flipped[len(flipped)-1] ^= 1
	for name, tc := range map[string]struct {
		box  *Box
		data []byte
		want error
	}{
		"other key":  {other, data, ErrWrongKey},
		"other kind": {foreign, data, ErrForeign},
		"flipped":    {b, flipped, ErrWrongKey},
		"truncated":  {b, data[:20], ErrTruncated},
		"empty":      {b, nil, ErrForeign},
	} {
		if _, err := tc.box.Open(tc.data); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

// FuzzOpen: any bytes are refused or opened, never a panic.
func FuzzOpen(f *testing.F) {
	b, _ := New(bytes.Repeat([]byte{1}, 32), "M\n")
	good, _ := b.Seal([]byte("x"))
	f.Add(good)
	f.Add([]byte("M\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = b.Open(data)
	})
}

// TestKeySize: AES would take a 16- or 24-byte key and say nothing; a state
// key is 32 bytes, and a wrong one is named by its length.
func TestKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33} {
		if _, err := New(make([]byte, n), "GITOPSIM-TEST-1\n"); err == nil || !bytes.Contains([]byte(err.Error()), []byte("a state key is 32")) {
			t.Errorf("a %d-byte key: %v", n, err)
		}
	}
}
