package train

import (
	"strings"
	"testing"
)

func TestWithoutFlag(t *testing.T) {
	got := withoutFlag([]string{"--nproc-per-node", "2", "--config", "a.yaml", "-nproc-per-node=3", "--set", "bs=4"}, "nproc-per-node")
	if strings.Join(got, " ") != "--config a.yaml --set bs=4" {
		t.Errorf("got %v", got)
	}
}

func TestSplitResume(t *testing.T) {
	for _, c := range []struct {
		args, rest string
		resume     bool
		dir        string
	}{
		{"--config c.yaml", "--config c.yaml", false, ""},
		{"--resume --config c.yaml", "--config c.yaml", true, ""},
		{"--config c.yaml --resume runs/a", "--config c.yaml", true, "runs/a"},
		{"-resume=runs/b --set bs=4", "--set bs=4", true, "runs/b"},
	} {
		rest, resume, dir := SplitResume(strings.Fields(c.args))
		if strings.Join(rest, " ") != c.rest || resume != c.resume || dir != c.dir {
			t.Errorf("%q: rest %q resume %v dir %q", c.args, rest, resume, dir)
		}
	}
}
