package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/clipcap/clipcap/train"
)

// Every clipcap command in the deployment recipes (deploy/) and the
// Dockerfile names a registered command and only flags that command
// declares (read from its --help, so flags added later count); training
// commands' configs, with their --set overrides, load as train configs.

// helpFlags runs `clipcap NAME --help` and returns its flags, each mapped to
// whether it takes a value.
func helpFlags(t *testing.T, name string) map[string]bool {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "help")
	if err != nil {
		t.Fatal(err)
	}
	// Help goes to stdout (or stderr, for commands that print it there).
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = f, f
	rc := run([]string{name, "--help"})
	os.Stdout, os.Stderr = stdout, stderr
	f.Close()
	if rc != 0 {
		t.Fatalf("clipcap %s --help exited %d", name, rc)
	}
	text, _ := os.ReadFile(f.Name())
	// flag.PrintDefaults: "  -name type" for flags with a value, "  -name" for booleans.
	re := regexp.MustCompile(`(?m)^  -(\S+)(?: (\S+))?`)
	out := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(string(text), -1) {
		out[m[1]] = m[2] != ""
	}
	if !strings.Contains(string(text), "Usage: clipcap "+name) {
		t.Fatalf("clipcap %s --help printed no usage:\n%s", name, text)
	}
	return out
}

// invocation is one clipcap command line from a recipe.
type invocation struct {
	where string
	cmd   string   // subcommand ("" for bare `clipcap --help`)
	flags []string // flag names used
	set   []string // --set values (train)
	conf  string   // --config value (train)
}

// parseInvocation finds `clipcap SUBCOMMAND ARGS...` in words (a path
// ending in /clipcap counts) and checks its flags against the command's.
func parseInvocation(t *testing.T, where string, words []string, known map[string]map[string]bool) (invocation, bool) {
	t.Helper()
	i := 0
	for i < len(words) && filepath.Base(words[i]) != "clipcap" {
		i++
	}
	if i == len(words) {
		return invocation{}, false
	}
	inv := invocation{where: where}
	args := words[i+1:]
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) != 1 || (args[0] != "--help" && args[0] != "-h") {
			t.Errorf("%s: clipcap %v: want a command", where, args)
		}
		return inv, true
	}
	inv.cmd = args[0]
	if _, ok := commands[inv.cmd]; !ok {
		t.Errorf("%s: clipcap %s: no such command", where, inv.cmd)
		return inv, true
	}
	if known[inv.cmd] == nil {
		known[inv.cmd] = helpFlags(t, inv.cmd)
	}
	flags := known[inv.cmd]
	for k := 1; k < len(args); k++ {
		a := args[k]
		if !strings.HasPrefix(a, "-") {
			continue // a positional argument (extract --merge's parts, caption texts)
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takes, ok := flags[name]
		if !ok {
			t.Errorf("%s: clipcap %s has no flag %s", where, inv.cmd, a)
			continue
		}
		inv.flags = append(inv.flags, name)
		if takes && !hasVal {
			if k+1 >= len(args) {
				t.Errorf("%s: clipcap %s: %s without a value", where, inv.cmd, a)
				break
			}
			k++
			val = args[k]
		}
		switch name {
		case "set":
			inv.set = append(inv.set, val)
		case "config":
			inv.conf = val
		}
	}
	return inv, true
}

// shellCommands splits shell text into simple commands: continuation
// lines joined, split at && ; and |, scheduler variables substituted.
func shellCommands(text string) [][]string {
	text = strings.ReplaceAll(text, "\\\n", " ")
	var out [][]string
	for _, line := range strings.Split(text, "\n") {
		for _, part := range regexp.MustCompile(`&&|;|\|`).Split(line, -1) {
			if w := strings.Fields(recipeVars.Replace(part)); len(w) > 0 {
				out = append(out, w)
			}
		}
	}
	return out
}

// yamlCommands walks decoded YAML documents for containers' command/args.
func yamlCommands(docs []any) [][]string {
	var out [][]string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if cmd, ok := v["command"].([]any); ok {
				var words []string
				for _, w := range cmd {
					words = append(words, strings.TrimSpace(w.(string)))
				}
				if args, ok := v["args"].([]any); ok {
					for _, w := range args {
						words = append(words, w.(string))
					}
				}
				if len(words) > 2 && words[0] == "/bin/sh" && words[1] == "-c" {
					out = append(out, shellCommands(strings.Join(words[2:], " "))...)
				} else {
					out = append(out, words)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	for _, d := range docs {
		walk(d)
	}
	return out
}

func decodeYAMLDocs(t *testing.T, path string) []any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []any
	for {
		var d any
		if err := dec.Decode(&d); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, d)
	}
	return docs
}

// dockerCommands are the Dockerfile's RUN commands and its ENTRYPOINT+CMD.
func dockerCommands(t *testing.T, text string) [][]string {
	t.Helper()
	text = strings.ReplaceAll(text, "\\\n", " ")
	var out [][]string
	var entry, cmd []string
	for _, line := range strings.Split(text, "\n") {
		instr, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch instr {
		case "RUN":
			out = append(out, shellCommands(rest)...)
		case "ENTRYPOINT", "CMD":
			var words []string
			if err := yaml.Unmarshal([]byte(rest), &words); err != nil {
				t.Fatalf("Dockerfile %s %s: want the JSON form: %v", instr, rest, err)
			}
			if instr == "ENTRYPOINT" {
				entry = words
			} else {
				cmd = words
			}
		}
	}
	return append(out, append(entry, cmd...))
}

// checkTrainConfig loads a training command's config with its overrides.
func checkTrainConfig(t *testing.T, inv invocation, path string) {
	t.Helper()
	if _, err := train.LoadConfig(path, inv.set); err != nil {
		t.Errorf("%s: clipcap train --config %s: %v", inv.where, inv.conf, err)
	}
}

func TestRecipesUseFlagsAndKeysThatExist(t *testing.T) {
	known := map[string]map[string]bool{}
	// The help parser itself: train's flags, with and without values.
	if f := helpFlags(t, "train"); !f["config"] || !f["set"] || f["resume"] {
		t.Fatalf("train's flags read from --help: %v", f)
	}
	collect := func(where string, cmds [][]string) []invocation {
		var out []invocation
		for _, w := range cmds {
			if inv, ok := parseInvocation(t, where, w, known); ok {
				out = append(out, inv)
			}
		}
		if len(out) == 0 {
			t.Errorf("%s: no clipcap command found", where)
		}
		return out
	}
	has := func(inv invocation, flag string) bool {
		for _, f := range inv.flags {
			if f == flag {
				return true
			}
		}
		return false
	}

	// Every recipe, including the extraction ones (checked in detail by
	// their own tests above).
	recipes, _ := filepath.Glob("../../deploy/*/*")
	if len(recipes) < 4 {
		t.Fatalf("found %d recipes in deploy/", len(recipes))
	}
	images := map[string]bool{}
	for _, path := range recipes {
		name := filepath.Base(path)
		switch filepath.Ext(path) {
		case ".yaml":
			docs := decodeYAMLDocs(t, path)
			invs := collect(name, yamlCommands(docs))
			for _, m := range regexp.MustCompile(`(?m)^\s*image:\s*(\S+)`).FindAllStringSubmatch(mustRead(t, path), -1) {
				images[m[1]] = true
			}
			for _, inv := range invs {
				if inv.cmd == "train" {
					checkPyTorchJob(t, name, docs, inv)
				}
			}
		case ".sbatch":
			text := mustRead(t, path)
			var lines []string
			for _, l := range strings.Split(text, "\n") {
				if strings.HasPrefix(l, "# MERGE: ") {
					l = strings.TrimPrefix(l, "# MERGE: ")
				} else if strings.HasPrefix(strings.TrimSpace(l), "#") {
					continue
				}
				lines = append(lines, l)
			}
			for _, inv := range collect(name, shellCommands(strings.Join(lines, "\n"))) {
				if inv.cmd != "train" {
					continue
				}
				checkTrainConfig(t, inv, filepath.Join("../..", inv.conf))
				if !has(inv, "resume") {
					t.Errorf("%s: clipcap train without --resume: a requeued job would start over", name)
				}
				for _, want := range []string{`(?m)^#SBATCH --requeue$`, `(?m)^#SBATCH --nodes=\d+$`, `(?m)^export MASTER_ADDR=`, `(?m)^export MASTER_PORT=`, `(?m)^srun clipcap train`} {
					if !regexp.MustCompile(want).MatchString(text) {
						t.Errorf("%s: no line matching %s", name, want)
					}
				}
			}
		default:
			t.Errorf("%s: unknown recipe type; teach this test to read it", path)
		}
	}

	docker := mustRead(t, "../../Dockerfile")
	collect("Dockerfile", dockerCommands(t, docker))
	for _, want := range []string{`(?m)^FROM \S+bookworm\S* AS build$`, `(?m)^FROM debian:bookworm-slim$`, `scripts/setup.sh`, `(?m)^COPY --from=build /src/bin/clipcap /usr/local/bin/clipcap$`} {
		if !regexp.MustCompile(want).MatchString(docker) {
			t.Errorf("Dockerfile: nothing matches %s", want)
		}
	}
	tag := regexp.MustCompile(`docker build -t (\S+) `).FindStringSubmatch(docker)
	if tag == nil {
		t.Fatal("Dockerfile: no `docker build -t IMAGE` line saying what the recipes call it")
	}
	for img := range images {
		if img != tag[1] {
			t.Errorf("a recipe runs image %s, the Dockerfile builds %s", img, tag[1])
		}
	}
	if len(images) == 0 {
		t.Error("no recipe names an image")
	}
}

// checkPyTorchJob: the training command runs in every replica of a
// PyTorchJob (a Master and Workers, containers named as the operator
// expects), resumes, and reads a config from a ConfigMap that loads.
func checkPyTorchJob(t *testing.T, where string, docs []any, inv invocation) {
	t.Helper()
	var job, cm map[string]any
	for _, d := range docs {
		m, _ := d.(map[string]any)
		switch m["kind"] {
		case "PyTorchJob":
			job = m
		case "ConfigMap":
			cm = m
		}
	}
	if job == nil || cm == nil {
		t.Fatalf("%s: want a PyTorchJob and the ConfigMap of its config", where)
	}
	if !strings.HasPrefix(job["apiVersion"].(string), "kubeflow.org/") {
		t.Errorf("%s: PyTorchJob apiVersion %v", where, job["apiVersion"])
	}
	specs, _ := dig(job, "spec", "pytorchReplicaSpecs").(map[string]any)
	if n, _ := dig(specs, "Master", "replicas").(int); n != 1 {
		t.Errorf("%s: Master replicas %v, want 1", where, n)
	}
	if n, _ := dig(specs, "Worker", "replicas").(int); n < 1 {
		t.Errorf("%s: Worker replicas %v, want at least 1", where, n)
	}
	for _, role := range []string{"Master", "Worker"} {
		cs, _ := dig(specs, role, "template", "spec", "containers").([]any)
		if len(cs) != 1 || dig(cs[0], "name") != "pytorch" {
			t.Errorf("%s: %s wants one container named pytorch (the operator sets RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT there)", where, role)
		}
		if p, _ := dig(specs, role, "restartPolicy").(string); p != "OnFailure" && p != "ExitCode" {
			t.Errorf("%s: %s restartPolicy %q: a failed pod must restart (and resume)", where, role, p)
		}
	}
	found := false
	for _, f := range inv.flags {
		found = found || f == "resume"
	}
	if !found {
		t.Errorf("%s: clipcap train without --resume: a restarted pod would start over", where)
	}
	data, _ := dig(cm, "data").(map[string]any)
	text, ok := data[filepath.Base(inv.conf)].(string)
	if !ok {
		t.Fatalf("%s: --config %s is not a key of ConfigMap %v", where, inv.conf, dig(cm, "metadata", "name"))
	}
	p := filepath.Join(t.TempDir(), filepath.Base(inv.conf))
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	checkTrainConfig(t, inv, p)
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
