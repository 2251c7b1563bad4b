package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// client.mjs drives the server with the official openai package: models,
// a plain and a streamed completion with the same options, the stream
// helper's accumulated message, n samples and an error.
const openaiClientJS = `import OpenAI from "openai";
const [base, url] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base + "/v1", apiKey: "not-needed", maxRetries: 0 });
const messages = [{ role: "user", content: [
  { type: "text", text: "What is in this image?" },
  { type: "image_url", image_url: { url } },
] }];
const opts = { model: "clipcap", messages, temperature: 0, max_tokens: 9 };
const out = {};
out.models = (await client.models.list()).data.map(m => m.id);
const plain = await client.chat.completions.create(opts);
out.plain = plain.choices[0].message.content;
out.finish = plain.choices[0].finish_reason;
out.fingerprint = plain.system_fingerprint;
out.chunks = [];
for await (const chunk of await client.chat.completions.create({ ...opts, stream: true })) {
  for (const c of chunk.choices) {
    if (c.delta.role) continue; // the opening chunk
    if (c.finish_reason) { out.streamFinish = c.finish_reason; if (c.delta.content) out.tail = c.delta.content; continue; }
    out.chunks.push(c.delta.content);
  }
}
const helper = client.chat.completions.stream ?? client.beta?.chat?.completions?.stream;
if (helper) {
  const runner = helper.call(client.chat.completions.stream ? client.chat.completions : client.beta.chat.completions, opts);
  out.accumulated = (await runner.finalChatCompletion()).choices[0].message.content;
}
const samples = await client.chat.completions.create({ model: "clipcap", messages, temperature: 1.2, seed: 5, n: 2 });
out.samples = samples.choices.map(c => c.message.content);
try {
  await client.chat.completions.create({ model: "clipcap", messages: [{ role: "user", content: "describe it" }] });
} catch (e) {
  out.error = { status: e.status, param: e.param ?? e.error?.param, message: e.message };
}
console.log(JSON.stringify(out));
`

// installOpenAI installs the openai npm package into a temp dir, or skips
// the test saying why.
func installOpenAI(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("installs the openai npm package")
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install nodejs npm), so the openai client cannot run", tool)
		}
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "openai")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("npm install openai failed (no registry access?): %v: %.600s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "client.mjs"), []byte(openaiClientJS), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The official openai client, non-streaming and streaming, gets the
// caption /v1/captions gives for the same image and options; its stream's
// chunks concatenate to the non-streamed caption.
func TestOpenAINodeClient(t *testing.T) {
	dir := installOpenAI(t)
	_, hs := newServer(t, Config{MaxWait: time.Millisecond})
	img := jpegBytes(t, testImage(12))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "client.mjs", hs.URL, dataURL("image/jpeg", img))
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node client: %v\n%s", err, stderr.String())
	}
	var got struct {
		Models                                   []string
		Plain, Finish, Fingerprint, StreamFinish string
		Chunks                                   []string
		Tail                                     string
		Accumulated                              *string
		Samples                                  []string
		Error                                    *struct {
			Status  int
			Param   string
			Message string
		}
	}
	if err := json.Unmarshal(stdout, &got); err != nil {
		t.Fatalf("client output %q: %v", stdout, err)
	}
	text, toks := captionsAPI(t, hs.URL, "strategy=greedy&max_tokens=9", img)
	if got.Plain != text {
		t.Errorf("openai client: %q; /v1/captions: %q", got.Plain, text)
	}
	if s := strings.Join(got.Chunks, "") + got.Tail; s != got.Plain {
		t.Errorf("stream chunks concatenate to %q, non-streamed %q", s, got.Plain)
	}
	if len(got.Chunks) != len(toks) {
		t.Errorf("%d token chunks for %d tokens", len(got.Chunks), len(toks))
	}
	if got.StreamFinish != got.Finish || got.Finish == "" {
		t.Errorf("finish_reason streamed %q, plain %q", got.StreamFinish, got.Finish)
	}
	if got.Accumulated != nil && *got.Accumulated != text {
		t.Errorf("the client's stream helper accumulated %q, want %q", *got.Accumulated, text)
	}
	if fmt.Sprint(got.Models) != "[clipcap]" || got.Fingerprint != Fingerprint {
		t.Errorf("models %v, fingerprint %q", got.Models, got.Fingerprint)
	}
	if len(got.Samples) != 2 {
		t.Fatalf("n=2 gave %d choices", len(got.Samples))
	}
	for i, s := range got.Samples {
		if want, _ := captionsAPI(t, hs.URL, fmt.Sprintf("strategy=sample&temperature=1.2&seed=%d", 5+i), img); s != want {
			t.Errorf("sample %d: %q; /v1/captions with seed %d: %q", i, s, 5+i, want)
		}
	}
	if got.Error == nil || got.Error.Status != 400 || got.Error.Param != "messages" || !strings.Contains(got.Error.Message, "image_url") {
		t.Errorf("a request without an image: client saw %+v, want a 400 about messages", got.Error)
	}
	t.Logf("openai client captions %q in %d chunks; stream helper: %v", got.Plain, len(got.Chunks), got.Accumulated != nil)
}
