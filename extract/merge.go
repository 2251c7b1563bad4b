package extract

import (
	"fmt"
	"io"
	"os"

	"github.com/clipcap/clipcap/data/featstore"
)

// Merge joins the part stores of a --shard K/N extraction into out (see
// featstore.Merge) and prints a summary line.
func Merge(out string, parts []string, shardSize int, stderr io.Writer) error {
	if stderr == nil {
		stderr = os.Stderr
	}
	if shardSize <= 0 {
		shardSize = 4096
	}
	m, err := featstore.Merge(out, parts, shardSize)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "extract merge: %d parts -> %s: %d images, %d captions, %d rejected, %d shards\n",
		len(parts), out, m.Images, m.Captions, len(m.Rejected), len(m.Shards))
	return nil
}
