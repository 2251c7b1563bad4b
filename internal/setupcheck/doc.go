// Package setupcheck holds tests of scripts/setup.sh and
// scripts/fetch-tokenizer.sh: their failure messages must name the cause
// and the fix on one line.
package setupcheck
