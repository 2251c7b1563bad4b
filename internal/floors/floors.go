// Package floors holds the test that keeps the project's layers apart (see
// docs/ARCHITECTURE.md): the ground (internal/torchrt, internal/tensorfile)
// imports no project package; model/ and data/ stand side by side on it and
// never import each other or anything above them.
package floors
