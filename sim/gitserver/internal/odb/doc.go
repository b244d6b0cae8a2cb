// Package odb is the git server's object database: go-git's filesystem
// storage (on disk, or on an in-memory filesystem) for references and
// writes, with a read side and a pack writer of its own.
//
// The read side indexes every pack once (hash to pack entry), reads
// entries with ReadAt, inflates them with pooled zlib readers, applies
// deltas and keeps decoded objects in a bounded cache. go-git's own read
// path opens the pack file and walks its index list for every object, and
// its storages are not safe for concurrent readers; this one is.
//
// The pack writer sends what is stored as it is stored, as git
// pack-objects does: an entry that is not a delta, or a delta whose base
// is in the same outgoing pack (or, for a thin pack, held by the client),
// is copied byte for byte; only the rest is inflated and deflated again.
// It never searches for new deltas. Serving a clone therefore costs a
// walk and a copy, not a recompression of the repository.
//
// What it is not: a general git storage. It does not repack, prune or
// verify what it reads beyond what decoding needs.
package odb
