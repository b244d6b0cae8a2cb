// Package sealed is the encrypted file format of gitopsim's state: a magic
// line naming what the file is, then a random nonce and the AES-256-GCM
// sealed content, with the magic line as additional data. The ARM state and
// the git server's identities use it.
package sealed

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
)

// Errors of Open; callers add the file's name and what to do.
var (
	ErrForeign   = errors.New("not this kind of gitopsim file")
	ErrTruncated = errors.New("truncated")
	ErrWrongKey  = errors.New("cannot decrypt: another key, or damaged")
)

// KeySize is the length of a key, in bytes.
const KeySize = 32

// Box seals and opens one kind of file (one magic line) under one key.
type Box struct {
	magic []byte
	aead  cipher.AEAD
}

// New makes a Box for a 32-byte key and the magic line of a kind of file.
func New(key []byte, magic string) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("the key is %d bytes; a state key is %d (AES-256)", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{magic: []byte(magic), aead: aead}, nil
}

// Seal returns the file's bytes for plain.
func (b *Box) Seal(plain []byte) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return slices.Concat(b.magic, nonce, b.aead.Seal(nil, nonce, plain, b.magic)), nil
}

// Open returns the content of a file Seal wrote.
func (b *Box) Open(data []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(data, b.magic)
	if !ok {
		return nil, ErrForeign
	}
	ns := b.aead.NonceSize()
	if len(rest) < ns+b.aead.Overhead() {
		return nil, ErrTruncated
	}
	plain, err := b.aead.Open(nil, rest[:ns], rest[ns:], b.magic)
	if err != nil {
		return nil, ErrWrongKey
	}
	return plain, nil
}
