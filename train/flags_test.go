package train

import (
	"reflect"
	"strings"
	"testing"

	"github.com/clipcap/clipcap/internal/flagtest"
)

func TestFlagsParsed(t *testing.T) {
	parse := func(args string) Flags {
		var f Flags
		rest, resume, dir := SplitResume(strings.Fields(args))
		flagtest.Parse(t, f.RegisterFlags, rest...)
		f.Resume, f.RunDir = resume, dir
		return f
	}
	if f := parse(""); !reflect.DeepEqual(f, Flags{}) {
		t.Errorf("defaults %+v", f)
	}
	f := parse("--config c.yaml --set bs=4 --set lr=1e-4 --verify --nproc-per-node 2 --resume runs/x")
	j := f.Parsed()
	want := Job{Config: "c.yaml", Sets: []string{"bs=4", "lr=1e-4", "verify_data=true"}, Resume: true, RunDir: "runs/x"}
	if !reflect.DeepEqual(j, want) || f.NProcPerNode != 2 {
		t.Errorf("job %+v (nproc %d), want %+v", j, f.NProcPerNode, want)
	}
	if len(f.Sets) != 2 {
		t.Errorf("Parsed changed the flags' own --set list: %q", f.Sets)
	}
}
