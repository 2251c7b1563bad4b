// Command gotchprep prepares a copy of gotch's source for the libtorch found by
// scripts/setup.sh. gotch v0.9.1 is generated for libtorch 2.1: its cgo flags
// hard-code CUDA, and some generated C++ wrappers call ops that other libtorch
// versions lack or declare differently. Rather than keeping a hand-made list
// per version, gotchprep compiles the wrappers, turns every wrapper the
// compiler rejects into one that throws "<name> is not available in this
// libtorch" (gotch's PROTECT macro turns that into a Go error), and repeats
// until the file compiles. The same run therefore works for Debian's CPU
// libtorch 1.13 and a CUDA libtorch 2.x.
//
// Usage: gotchprep -src GOTCH_MODULE_DIR -dst DIR -cflags "..." -cxxflags "..." -ldflags "..."
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

const generatedFile = "torch_api_generated.cpp.h"

func main() {
	src := flag.String("src", "", "gotch module directory (read-only module cache copy)")
	dst := flag.String("dst", "", "directory to write the prepared copy into")
	cflags := flag.String("cflags", "", "cgo CFLAGS for libtch")
	cxxflags := flag.String("cxxflags", "", "cgo CXXFLAGS for libtch (include paths, ABI define)")
	ldflags := flag.String("ldflags", "", "cgo LDFLAGS for libtch")
	maxRounds := flag.Int("rounds", 6, "compile/stub rounds before giving up")
	flag.Parse()
	if *src == "" || *dst == "" {
		fmt.Fprintln(os.Stderr, "gotchprep: -src and -dst are required")
		os.Exit(2)
	}
	if err := prepare(*src, *dst, *cflags, *cxxflags, *ldflags, *maxRounds); err != nil {
		fmt.Fprintln(os.Stderr, "gotchprep:", err)
		os.Exit(1)
	}
}

func prepare(src, dst, cflags, cxxflags, ldflags string, maxRounds int) error {
	tmp := dst + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := copyTree(src, tmp); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	libtch := filepath.Join(tmp, "libtch")
	if err := writeLibGo(filepath.Join(libtch, "lib.go"), cflags, cxxflags, ldflags); err != nil {
		return err
	}
	if err := freeReplacedHandles(filepath.Join(tmp, "ts", "tensor-generated.go")); err != nil {
		return err
	}
	if err := shrinkGCBallast(filepath.Join(tmp, "ts", "tensor.go")); err != nil {
		return err
	}
	if err := freeOutputSlots(filepath.Join(tmp, "ts", "tensor-generated.go")); err != nil {
		return err
	}
	for _, f := range []string{"tensor-generated.go", "tensor.go"} {
		if err := keepArgumentsAlive(filepath.Join(tmp, "ts", f)); err != nil {
			return err
		}
	}
	genPath := filepath.Join(libtch, generatedFile)
	var stubbed []string
	for round := 1; ; round++ {
		out, ok := syntaxCheck(libtch, cxxflags)
		if ok {
			break
		}
		if round > maxRounds {
			return fmt.Errorf("torch_api.cpp still fails to compile after %d rounds:\n%s", maxRounds, tail(out, 4000))
		}
		lines := failingLines(out)
		if len(lines) == 0 {
			return fmt.Errorf("torch_api.cpp fails outside the generated wrappers; this libtorch is not supported:\n%s", tail(out, 4000))
		}
		names, err := stubFunctions(genPath, lines)
		if err != nil {
			return err
		}
		if len(names) == 0 {
			return fmt.Errorf("compiler errors in %s could not be mapped to wrappers:\n%s", generatedFile, tail(out, 4000))
		}
		fmt.Fprintf(os.Stderr, "gotchprep: round %d: stubbed %d wrappers this libtorch cannot compile\n", round, len(names))
		stubbed = append(stubbed, names...)
	}
	sort.Strings(stubbed)
	report := "# wrappers replaced by a runtime error for this libtorch\n" + strings.Join(stubbed, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(tmp, "STUBBED.txt"), []byte(report), 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// freeReplacedHandles fixes a leak in gotch's in-place ops (Add_, MaskedFill_,
// ...): each replaces the Go tensor's C handle by the one the op returns and
// never frees the old handle, which keeps the tensor's storage alive for
// ever (30 Add_ on a 40 MB tensor leaked 1.2 GB). Both handles point at the
// same tensor, so freeing the old one releases only the extra reference.
func freeReplacedHandles(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	const old = "\n  ts.ctensor = *ptr\n"
	n := strings.Count(string(data), old)
	if n == 0 {
		return fmt.Errorf("%s: no in-place op assignments found to patch (gotch changed?)", path)
	}
	patched := strings.ReplaceAll(string(data), old, "\n  lib.AtFree(ts.ctensor)\n  ts.ctensor = *ptr\n")
	return os.WriteFile(path, []byte(patched), 0o644)
}

var (
	funcLineRE = regexp.MustCompile(`^func ?(\(ts \*Tensor\))? ?[A-Za-z_][A-Za-z0-9_]*\((.*)\) ?(\(.*\))? ?\{\s*$`)
	ptrParamRE = regexp.MustCompile(`(\w+) (\*Tensor|\*Scalar|\[\]\*Tensor)\b`)
)

// keepArgumentsAlive fixes a use-after-free in gotch: its functions pass
// ts.ctensor / s.cscalar to C and never touch the Go objects again, so when
// a caller passes a temporary (ts.FloatScalar(2), a tensor it does not use
// afterwards) the garbage collector may run the object's finalizer — which
// frees the C tensor or scalar — while libtorch is still using it. A
// deferred runtime.KeepAlive per pointer argument keeps each alive until
// the function returns.
func keepArgumentsAlive(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(string(data), "\n")
	out := make([]string, 0, len(lines)*2)
	patched := 0
	for _, line := range lines {
		out = append(out, line)
		m := funcLineRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var names []string
		if m[1] != "" {
			names = append(names, "ts")
		}
		for _, p := range ptrParamRE.FindAllStringSubmatch(m[2], -1) {
			names = append(names, p[1])
		}
		for _, n := range names {
			out = append(out, "\tdefer runtime.KeepAlive("+n+")")
		}
		if len(names) > 0 {
			patched++
		}
	}
	if patched == 0 {
		return fmt.Errorf("%s: no functions found to patch (gotch changed?)", path)
	}
	src := strings.Join(out, "\n")
	if !strings.Contains(src, "\"runtime\"") {
		src = strings.Replace(src, "import(\n", "import(\n  \"runtime\"\n", 1)
	}
	return os.WriteFile(path, []byte(src), 0o644)
}

// shrinkGCBallast makes gotch's per-tensor GC ballast 4 KB instead of 100 KB.
// gotch attaches a zeroed Go array to every tensor so that garbage
// collection (and with it the finalizers that free C tensors) runs often;
// at 100 KB that is 30 MB of zeroing per GPT-2 decoding step and a
// collection every few steps. clipcap frees tensors explicitly in its hot
// loops, so a smaller ballast still bounds what forgotten tensors hold.
func shrinkGCBallast(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	const old = "lots [1e5]byte"
	if !strings.Contains(string(data), old) {
		return fmt.Errorf("%s: no %q to patch (gotch changed?)", path, old)
	}
	return os.WriteFile(path, []byte(strings.Replace(string(data), old, "lots [4096]byte", 1)), 0o644)
}

// freeOutputSlots fixes two defects of every generated gotch op: the slot
// the C wrapper writes its output handle(s) into is C.malloc(0) — never
// freed (32 bytes per libtorch call, which also fragments glibc's arenas:
// +120 MB RSS over 2000 training steps) and too small for ops with more
// than three outputs (they write up to 7 handles past a 24-byte block). The
// slot becomes a zeroed 8-handle block freed when the function returns; the
// handles are copied out before that.
func freeOutputSlots(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	src := string(data)
	n := 0
	for _, v := range []string{"ptr", "ctensorPtr0"} {
		old := "\n  " + v + " := (*lib.Ctensor)(unsafe.Pointer(C.malloc(0)))\n"
		n += strings.Count(src, old)
		src = strings.ReplaceAll(src, old, "\n  "+v+" := (*lib.Ctensor)(unsafe.Pointer(C.calloc(8, 8)))\n  defer C.free(unsafe.Pointer("+v+"))\n")
	}
	if n == 0 {
		return fmt.Errorf("%s: no output slots found to patch (gotch changed?)", path)
	}
	if strings.Contains(src, "C.malloc(0)") {
		return fmt.Errorf("%s: output slot allocations of an unknown shape remain", path)
	}
	return os.WriteFile(path, []byte(src), 0o644)
}

// writeLibGo replaces gotch's lib.go, whose flags hard-code CUDA and a bundled libtorch.
func writeLibGo(path, cflags, cxxflags, ldflags string) error {
	var b strings.Builder
	b.WriteString("// Code generated by clipcap scripts/gotchprep for the libtorch found by setup.sh. DO NOT EDIT.\n\npackage libtch\n\n")
	b.WriteString("// #cgo CFLAGS: -I${SRCDIR} -O3 -Wall -Wno-unused-variable -Wno-deprecated-declarations -Wno-c++11-narrowing -g -Wno-sign-compare -Wno-unused-function\n")
	if cflags != "" {
		b.WriteString("// #cgo CFLAGS: " + cflags + "\n")
	}
	b.WriteString("// #cgo CXXFLAGS: -std=c++17 -I${SRCDIR} -O1 -w " + cxxflags + "\n")
	b.WriteString("// #cgo LDFLAGS: " + ldflags + "\n")
	b.WriteString("import \"C\"\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// syntaxCheck compiles torch_api.cpp (which includes the generated wrappers)
// without generating code: much faster than a full build, and it reports
// every wrapper that does not compile.
func syntaxCheck(libtch, cxxflags string) (string, bool) {
	args := []string{"-fsyntax-only", "-std=c++17", "-w", "-fmax-errors=0", "-I" + libtch}
	args = append(args, strings.Fields(cxxflags)...)
	args = append(args, filepath.Join(libtch, "torch_api.cpp"))
	cmd := exec.Command(cxxCompiler(), args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err == nil
}

func cxxCompiler() string {
	if c := os.Getenv("CXX"); c != "" {
		return c
	}
	return "g++"
}

var locRE = regexp.MustCompile(regexp.QuoteMeta(generatedFile) + `:(\d+):`)

// failingLines collects every line of the generated file the compiler output
// points at, including "required from here" notes of template errors.
func failingLines(out string) []int {
	seen := map[int]bool{}
	var lines []int
	for _, m := range locRE.FindAllStringSubmatch(out, -1) {
		n, err := strconv.Atoi(m[1])
		if err == nil && !seen[n] {
			seen[n] = true
			lines = append(lines, n)
		}
	}
	return lines
}

var funcStartRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_ \*]*\b(atg_[A-Za-z0-9_]+)\(`)

// stubFunctions replaces the body inside PROTECT(...) of each wrapper that
// contains one of the given (1-based) lines by a throw, keeping the
// signature and any trailing return so the C ABI is unchanged.
func stubFunctions(path string, bad []int) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(data), "\n")
	type span struct {
		name       string
		start, end int // 0-based, inclusive: function header .. closing brace
	}
	var spans []span
	for i := 0; i < len(lines); i++ {
		m := funcStartRE.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		j := i
		for j < len(lines) && lines[j] != "}" {
			j++
		}
		spans = append(spans, span{m[1], i, j})
		i = j
	}
	hit := map[int]bool{}
	for _, ln := range bad {
		idx := sort.Search(len(spans), func(k int) bool { return spans[k].end >= ln-1 })
		if idx < len(spans) && spans[idx].start <= ln-1 {
			hit[idx] = true
		}
	}
	var names []string
	// Rewrite from the end so earlier indices stay valid.
	idxs := make([]int, 0, len(hit))
	for k := range hit {
		idxs = append(idxs, k)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(idxs)))
	for _, k := range idxs {
		s := spans[k]
		open, closeLn := -1, -1
		for i := s.start; i <= s.end; i++ {
			t := strings.TrimSpace(lines[i])
			if open < 0 && t == "PROTECT(" {
				open = i
			} else if open >= 0 && t == ")" {
				closeLn = i
			}
		}
		if open < 0 || closeLn < 0 {
			return nil, fmt.Errorf("%s: wrapper %s has no PROTECT( ... ) block to stub", path, s.name)
		}
		body := fmt.Sprintf("    throw std::runtime_error(\"%s is not available in this libtorch\");", strings.TrimPrefix(s.name, "atg_"))
		repl := append([]string{}, lines[:open+1]...)
		repl = append(repl, body)
		repl = append(repl, lines[closeLn:]...)
		lines = repl
		names = append(names, s.name)
	}
	return names, os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644)
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}
