package floors

import (
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/clipcap/clipcap/"

// rules: a package under the key (a path prefix) must not import a project
// package under any of the listed prefixes.
var rules = map[string][]string{
	"internal/torchrt":    {""}, // no project package at all
	"internal/tensorfile": {""},
	"internal/progress":   {""},
	"internal/dist":       {""},
	"model/":              {"data/", "caption", "train", "eval", "extract", "live", "serve", "cmd/", "demo", "internal/doctor"},
	"data/":               {"model/", "caption", "train", "eval", "extract", "live", "serve", "cmd/", "demo", "internal/doctor"},
	"caption":             {"train", "eval", "extract", "live", "serve", "cmd/", "demo"},
}

func TestFloors(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		from, ok := strings.CutPrefix(fields[0], module)
		if !ok {
			continue
		}
		for prefix, banned := range rules {
			if !strings.HasPrefix(from, prefix) {
				continue
			}
			checked++
			for _, imp := range fields[1:] {
				to, ok := strings.CutPrefix(imp, module)
				if !ok {
					continue
				}
				for _, b := range banned {
					if strings.HasPrefix(to, b) {
						t.Errorf("%s imports %s: %s may not import %q", from, to, prefix, b)
					}
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d packages matched the rules: is the module path still %q?", checked, module)
	}
}

// cmd/ is wiring: no file of it imports more than three project packages
// (each command calls into one package, plus shared flag helpers).
func TestCmdFilesAreThin(t *testing.T) {
	files, err := filepath.Glob("../../cmd/clipcap/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cmd files found: %v", err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		var project []string
		for _, imp := range af.Imports {
			if p := strings.Trim(imp.Path.Value, `"`); strings.HasPrefix(p, module) {
				project = append(project, strings.TrimPrefix(p, module))
			}
		}
		if len(project) > 3 {
			t.Errorf("%s imports %d project packages (%s): move the logic into one of them", filepath.Base(f), len(project), strings.Join(project, ", "))
		}
	}
}
