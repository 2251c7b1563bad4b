package metrics

import (
	"flag"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/clipcap/clipcap/internal/flagtest"
)

func TestJarVars(t *testing.T) {
	var o Options
	flagtest.Parse(t, func(fs *flag.FlagSet) { JarVars(fs, &o.MeteorJar, &o.SpiceJar) }, "--meteor-jar", "m.jar", "--spice-jar", "s.jar")
	if o.MeteorJar != "m.jar" || o.SpiceJar != "s.jar" {
		t.Errorf("%+v", o)
	}
}

// ScoreFiles is Score over the loaded files; a missing file is named.
func TestScoreFiles(t *testing.T) {
	resPath, annPath := filepath.Join("testdata", "parity_main_results.json"), filepath.Join("testdata", "parity_main_annotations.json")
	got, err := ScoreFiles(resPath, annPath, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := LoadResults(resPath)
	if err != nil {
		t.Fatal(err)
	}
	ann, err := LoadAnnotations(annPath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Score(res, ann, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Corpus) == 0 || !reflect.DeepEqual(got.Corpus, want.Corpus) {
		t.Errorf("corpus %v, want %v", got.Corpus, want.Corpus)
	}
	if _, err := ScoreFiles(filepath.Join(t.TempDir(), "none.json"), annPath, Options{}); err == nil || !strings.Contains(err.Error(), "none.json") {
		t.Errorf("missing results file: %v", err)
	}
}
