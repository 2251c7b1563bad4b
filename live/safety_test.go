package live

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// WebVTT cue text is escaped: a caption with markup characters or an
// arrow cannot open a tag or a timing line. SRT keeps the text (it has no
// escapes) with the arrow broken.
func TestCueTextEscaped(t *testing.T) {
	dir := t.TempDir()
	for ext, want := range map[string]string{
		".vtt": "a &lt;b&gt;bold&lt;/b&gt; &amp; c -&gt; d",
		".srt": "a <b>bold</b> & c -> d",
	} {
		p := filepath.Join(dir, "s"+ext)
		cw, err := NewCueWriter(p)
		if err != nil {
			t.Fatal(err)
		}
		must(t, cw.Show("a <b>bold</b> & c --> d", 0))
		must(t, cw.Close(time.Second))
		data, _ := os.ReadFile(p)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if got := lines[len(lines)-1]; got != want {
			t.Errorf("%s cue text %q, want %q", ext, got, want)
		}
		if strings.Count(string(data), "-->") != 1 {
			t.Errorf("%s: an arrow besides the timing line:\n%s", ext, data)
		}
	}
}

// File names reach ffmpeg as file: URLs, so a name that looks like an
// option or a protocol is only a file: the encoder writes "-out.mkv" and
// ffprobe/ffmpeg read "concat:x.mkv" back, rather than erroring on an
// unknown option or opening the concat protocol.
func TestFileNamesAreNotOptionsOrProtocols(t *testing.T) {
	needFFmpeg(t)
	t.Chdir(t.TempDir())
	enc, err := newEncoder("-out.mkv", 32, 24, 5)
	if err != nil {
		t.Fatal(err)
	}
	pix := make([]byte, 32*24*3)
	for i := 0; i < 3; i++ {
		must(t, enc.write(pix))
	}
	must(t, enc.close())
	if _, err := os.Stat("-out.mkv"); err != nil {
		t.Fatalf("the encoder did not write -out.mkv: %v", err)
	}
	must(t, os.Rename("-out.mkv", "concat:x.mkv"))
	src, err := ParseSource("concat:x.mkv")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ProbeSource(context.Background(), src)
	if err != nil || p.W != 32 || p.H != 24 {
		t.Fatalf("probe %+v, %v", p, err)
	}
}

// The sink's stderr is read (for the error message) while exec still
// copies into it: under -race this is the regression test.
func TestSinkStderrReadWhileWritten(t *testing.T) {
	s, err := startSink("test", "sh", []string{"-c", "exec 0<&-; echo first >&2; sleep 0.05; echo second >&2"})
	if err != nil {
		t.Fatal(err)
	}
	pix := make([]byte, 1<<16)
	deadline := time.Now().Add(10 * time.Second)
	for err == nil && time.Now().Before(deadline) {
		err = s.write(pix)
	}
	if err == nil {
		t.Fatal("writing to a process that closed its stdin never failed")
	}
	s.close()
	if !strings.Contains(s.stderr.String(), "second") {
		t.Errorf("stderr after close: %q", s.stderr.String())
	}
}
