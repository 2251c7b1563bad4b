package extract

import (
	"flag"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// recipeVars stands in for what the schedulers substitute at run time.
var recipeVars = strings.NewReplacer("$(JOB_COMPLETION_INDEX)", "2", "$SLURM_ARRAY_TASK_ID", "2",
	"$SLURM_CPUS_PER_TASK", "8", "$DATA", "/data", "$N", "4", `"`, "")

// checkExtractArgs parses a recipe's `clipcap extract` arguments with the
// command's own flags (Flags.RegisterFlags), so a renamed or misspelt flag
// fails here.
func checkExtractArgs(t *testing.T, where string, args []string) {
	t.Helper()
	fs := flag.NewFlagSet("extract", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f Flags
	f.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("%s: clipcap extract %v: %v", where, args, err)
	}
	if f.Out == "" {
		t.Errorf("%s: no --out", where)
	}
	if f.Merge {
		if fs.NArg() != 4 {
			t.Errorf("%s: merge of %d parts, want 4", where, fs.NArg())
		}
		return
	}
	k, n, err := ParseShard(f.Shard)
	if err != nil || k != 2 || n != 4 || fs.NArg() != 0 || f.Dataset == "" || f.Input == "" || f.CLIP == "" {
		t.Errorf("%s: shard %d/%d (%v), %d stray args, dataset %q input %q clip %q", where, k, n, err, fs.NArg(), f.Dataset, f.Input, f.CLIP)
	}
}

func extractArgs(t *testing.T, where string, words []string) []string {
	t.Helper()
	for i := 0; i+1 < len(words); i++ {
		if words[i] == "clipcap" && words[i+1] == "extract" {
			return words[i+2:]
		}
	}
	t.Fatalf("%s: no `clipcap extract` in %q", where, words)
	return nil
}

func TestKubernetesRecipe(t *testing.T) {
	f, err := os.Open("../deploy/k8s/extract-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	type container struct {
		Command []string `yaml:"command"`
		Args    []string `yaml:"args"`
	}
	var jobs []string
	calls := 0
	for {
		var doc struct {
			Kind     string `yaml:"kind"`
			Metadata struct{ Name string }
			Spec     struct {
				CompletionMode string `yaml:"completionMode"`
				Completions    int    `yaml:"completions"`
				Template       struct {
					Spec struct {
						Containers []container `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := dec.Decode(&doc); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatal(err)
		}
		if doc.Kind != "Job" || len(doc.Spec.Template.Spec.Containers) != 1 {
			t.Fatalf("%s: kind %q with %d containers", doc.Metadata.Name, doc.Kind, len(doc.Spec.Template.Spec.Containers))
		}
		jobs = append(jobs, doc.Metadata.Name)
		c := doc.Spec.Template.Spec.Containers[0]
		words := append(append([]string(nil), c.Command...), c.Args...)
		if len(c.Command) > 1 && c.Command[0] == "/bin/sh" {
			words = strings.Fields(recipeVars.Replace(strings.Join(c.Args, " ")))
		}
		args := extractArgs(t, doc.Metadata.Name, words)
		if doc.Spec.CompletionMode == "Indexed" {
			if doc.Spec.Completions != 4 {
				t.Errorf("%s: %d completions, the command shards by 4", doc.Metadata.Name, doc.Spec.Completions)
			}
		}
		checkExtractArgs(t, doc.Metadata.Name, args)
		calls++
	}
	if calls != 2 {
		t.Fatalf("jobs %v, want an indexed extract job and a merge job", jobs)
	}
}

func TestSlurmRecipe(t *testing.T) {
	data, err := os.ReadFile("../deploy/slurm/extract.sbatch")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if !regexp.MustCompile(`(?m)^#SBATCH --array=0-3$`).MatchString(text) {
		t.Error("no #SBATCH --array=0-3 line")
	}
	joined := strings.ReplaceAll(text, "\\\n", " ")
	var srun, merge string
	for _, l := range strings.Split(joined, "\n") {
		switch {
		case strings.HasPrefix(l, "srun clipcap extract"):
			srun = l
		case strings.HasPrefix(l, "# MERGE: "):
			merge = strings.TrimPrefix(l, "# MERGE: ")
		}
	}
	if srun == "" || merge == "" {
		t.Fatalf("want an `srun clipcap extract` command and a `# MERGE:` line")
	}
	checkExtractArgs(t, "srun", extractArgs(t, "srun", strings.Fields(recipeVars.Replace(srun))))
	checkExtractArgs(t, "merge", extractArgs(t, "merge", strings.Fields(merge)))
}
