package serve

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/clipcap/clipcap/data/tokenizer"
	"github.com/clipcap/clipcap/model/generate"
)

func dataURL(mime string, data []byte) string {
	return "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(data)
}

// chatBody is a webcam page's request: a text prompt and the image, plus
// the given fields.
func chatBody(url string, fields map[string]any) []byte {
	req := map[string]any{"model": "anything", "messages": []any{map[string]any{"role": "user", "content": []any{
		map[string]any{"type": "text", "text": "What do you see?"},
		map[string]any{"type": "image_url", "image_url": map[string]any{"url": url}},
	}}}}
	for k, v := range fields {
		req[k] = v
	}
	b, _ := json.Marshal(req)
	return b
}

type chatAnswer struct {
	ID                string `json:"id"`
	Object            string `json:"object"`
	Model             string `json:"model"`
	SystemFingerprint string `json:"system_fingerprint"`
	Choices           []struct {
		Index   int `json:"index"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		Delta struct {
			Role    *string `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

func postChat(t *testing.T, base string, body []byte) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(base+"/v1/chat/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

func chat(t *testing.T, base string, body []byte) (chatAnswer, http.Header) {
	t.Helper()
	resp, data := postChat(t, base, body)
	if resp.StatusCode != 200 {
		t.Fatalf("chat: %d %s", resp.StatusCode, data)
	}
	var a chatAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		t.Fatal(err)
	}
	return a, resp.Header
}

// streamed is a parsed chat.completion.chunk stream: each choice's deltas
// and finish reason.
type streamed struct {
	deltas  map[int][]string
	finish  map[int]string
	usage   int // completion tokens of the usage chunk, -1 if none
	done    bool
	objects map[string]bool
}

func chatStream(t *testing.T, base string, body []byte) streamed {
	t.Helper()
	resp, err := http.Post(base+"/v1/chat/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream: %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	out := streamed{deltas: map[int][]string{}, finish: map[int]string{}, usage: -1, objects: map[string]bool{}}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("unexpected SSE line %q", line)
		}
		if out.done {
			t.Fatalf("data after [DONE]: %q", data)
		}
		if data == "[DONE]" {
			out.done = true
			continue
		}
		var a chatAnswer
		if err := json.Unmarshal([]byte(data), &a); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		out.objects[a.Object] = true
		if a.Usage != nil {
			out.usage = a.Usage.CompletionTokens
		}
		for _, c := range a.Choices {
			if c.Delta.Role != nil {
				continue // the opening chunk
			}
			if c.FinishReason != nil {
				out.finish[c.Index] = *c.FinishReason
				if c.Delta.Content != nil {
					out.deltas[c.Index] = append(out.deltas[c.Index], *c.Delta.Content)
				}
				continue
			}
			if c.Delta.Content == nil {
				t.Fatalf("token chunk without content: %q", data)
			}
			out.deltas[c.Index] = append(out.deltas[c.Index], *c.Delta.Content)
		}
	}
	if !out.done {
		t.Fatal("the stream did not end with data: [DONE]")
	}
	return out
}

// captionsAPI is POST /v1/captions with the query q.
func captionsAPI(t *testing.T, base, q string, img []byte) (string, []int) {
	t.Helper()
	code, _, m := post(t, base+"/v1/captions?"+q, "image/png", img)
	if code != 200 {
		t.Fatalf("/v1/captions?%s: %d %v", q, code, m)
	}
	return m["caption"].(string), tokensOf(m)
}

// The chat endpoint gives /v1/captions' caption for the same image and
// options, non-streamed and streamed (chunks concatenate to it, one chunk
// per token), for greedy, sampled (n choices, each seeded seed + index)
// and n-best beam requests.
func TestChatMatchesCaptions(t *testing.T) {
	_, hs := newServer(t, Config{MaxWait: time.Millisecond})
	img := pngBytes(t, testImage(3))
	url := dataURL("image/png", img)
	for _, tc := range []struct {
		name   string
		fields map[string]any
		n      int
		query  func(choice int) string // the /v1/captions options of a choice
	}{
		{"model defaults", nil, 1, func(int) string { return "" }},
		{"temperature 0, 7 tokens", map[string]any{"temperature": 0, "max_tokens": 7}, 1,
			func(int) string { return "strategy=greedy&max_tokens=7" }},
		{"sampling n=3 seed 9", map[string]any{"temperature": 1.3, "seed": 9, "n": 3}, 3,
			func(c int) string { return fmt.Sprintf("strategy=sample&temperature=1.3&seed=%d", 9+c) }},
		{"beam extension", map[string]any{"strategy": "beam", "beam_size": 3}, 1,
			func(int) string { return "strategy=beam&beam=3" }},
	} {
		a, hdr := chat(t, hs.URL, chatBody(url, tc.fields))
		if a.Object != "chat.completion" || a.Model != "clipcap" || a.SystemFingerprint != Fingerprint || !strings.HasPrefix(a.ID, "chatcmpl-") {
			t.Errorf("%s: answer header fields %+v", tc.name, a)
		}
		if !strings.HasPrefix(hdr.Get("X-Clipcap-Prompt"), "ignored") {
			t.Errorf("%s: the text prompt's being ignored is not said: X-Clipcap-Prompt %q", tc.name, hdr.Get("X-Clipcap-Prompt"))
		}
		if len(a.Choices) != tc.n {
			t.Fatalf("%s: %d choices, want %d", tc.name, len(a.Choices), tc.n)
		}
		ntok := 0
		for i, c := range a.Choices {
			text, toks := captionsAPI(t, hs.URL, tc.query(i), img)
			ntok += len(toks)
			if c.Index != i || c.Message.Role != "assistant" || c.Message.Content != text {
				t.Errorf("%s choice %d: %+v; /v1/captions says %q", tc.name, i, c, text)
			}
			wantFinish := "length" // the tiny model stops at "." (13)
			if toks[len(toks)-1] == generate.DefaultStop {
				wantFinish = "stop"
			}
			if c.FinishReason == nil || *c.FinishReason != wantFinish {
				t.Errorf("%s choice %d: finish_reason %v, want %s (%d tokens)", tc.name, i, c.FinishReason, wantFinish, len(toks))
			}
		}
		distinct := map[string]bool{}
		for _, c := range a.Choices {
			distinct[c.Message.Content] = true
		}
		if tc.n > 1 && len(distinct) < 2 {
			t.Errorf("%s: the %d samples are all %q", tc.name, tc.n, a.Choices[0].Message.Content)
		}
		if a.Usage == nil || a.Usage.PromptTokens != 4 || a.Usage.CompletionTokens != ntok || a.Usage.TotalTokens != 4+ntok {
			t.Errorf("%s: usage %+v, want 4 prompt + %d completion tokens", tc.name, a.Usage, ntok)
		}

		fields := map[string]any{"stream": true, "stream_options": map[string]any{"include_usage": true}}
		for k, v := range tc.fields {
			fields[k] = v
		}
		st := chatStream(t, hs.URL, chatBody(url, fields))
		if !reflect.DeepEqual(st.objects, map[string]bool{"chat.completion.chunk": true}) || st.usage != ntok {
			t.Errorf("%s: chunk objects %v, usage %d (want %d)", tc.name, st.objects, st.usage, ntok)
		}
		for i, c := range a.Choices {
			_, toks := captionsAPI(t, hs.URL, tc.query(i), img)
			got := strings.Join(st.deltas[i], "")
			if got != c.Message.Content {
				t.Errorf("%s choice %d: chunks concatenate to %q, non-streamed %q", tc.name, i, got, c.Message.Content)
			}
			// One chunk per token, and the final chunk (only when the
			// length limit cut a character short).
			if n := len(st.deltas[i]); n != len(toks) && n != len(toks)+1 {
				t.Errorf("%s choice %d: %d content chunks for %d tokens", tc.name, i, n, len(toks))
			}
			if st.finish[i] != *c.FinishReason {
				t.Errorf("%s choice %d: streamed finish %q, non-streamed %q", tc.name, i, st.finish[i], *c.FinishReason)
			}
		}
	}
}

// n > 1 with beam search answers the n best beams: the first is the beam
// caption, all distinct.
func TestChatNBestBeams(t *testing.T) {
	_, hs := newServer(t, Config{MaxWait: time.Millisecond})
	img := pngBytes(t, testImage(4))
	a, _ := chat(t, hs.URL, chatBody(dataURL("image/png", img), map[string]any{"strategy": "beam", "n": 3}))
	if len(a.Choices) != 3 {
		t.Fatalf("%d choices", len(a.Choices))
	}
	// n=3 over the model's beam 5... the tiny model's default beam is 5.
	best, _ := captionsAPI(t, hs.URL, "strategy=beam&beam=5", img)
	if a.Choices[0].Message.Content != best {
		t.Errorf("first choice %q, beam caption %q", a.Choices[0].Message.Content, best)
	}
	seen := map[string]bool{}
	for _, c := range a.Choices {
		if seen[c.Message.Content] {
			t.Errorf("choice %q repeats", c.Message.Content)
		}
		seen[c.Message.Content] = true
	}
	st := chatStream(t, hs.URL, chatBody(dataURL("image/png", img), map[string]any{"strategy": "beam", "n": 3, "stream": true}))
	for i, c := range a.Choices {
		if got := strings.Join(st.deltas[i], ""); got != c.Message.Content {
			t.Errorf("streamed choice %d %q, non-streamed %q", i, got, c.Message.Content)
		}
	}
}

// Bad requests are 400s with OpenAI error objects naming the field.
func TestChatErrors(t *testing.T) {
	_, hs := newServer(t, Config{MaxWait: time.Millisecond, MaxBody: 1 << 20})
	png := dataURL("image/png", pngBytes(t, testImage(1)))
	msgs := func(v any) []byte {
		b, _ := json.Marshal(map[string]any{"model": "m", "messages": v})
		return b
	}
	for _, tc := range []struct {
		name      string
		body      []byte
		code      int
		param     string
		mentions  string
		wantParam bool
	}{
		{"text data URL", chatBody(dataURL("text/plain", []byte("hello")), nil), 400, "messages[0].content[1].image_url.url", "text/plain", true},
		{"data URL without type", chatBody("data:,hello", nil), 400, "messages[0].content[1].image_url.url", "not an image", true},
		{"remote URL", chatBody("https://example.com/cat.jpg", nil), 400, "messages[0].content[1].image_url.url", "--allow-fetch", true},
		{"ftp URL", chatBody("ftp://example.com/cat.jpg", nil), 400, "messages[0].content[1].image_url.url", "data: URL", true},
		{"bad base64", chatBody("data:image/png;base64,@@@@", nil), 400, "messages[0].content[1].image_url.url", "base64", true},
		{"not an image", chatBody(dataURL("image/png", []byte("not a png at all")), nil), 400, "", "PNG", false},
		{"n 17", chatBody(png, map[string]any{"n": 17}), 400, "n", "n 17", true},
		{"n 2 greedy", chatBody(png, map[string]any{"n": 2, "temperature": 0}), 400, "n", "greedy", true},
		{"max_tokens over", chatBody(png, map[string]any{"max_tokens": 61}), 400, "max_tokens", "at most 60", true},
		{"max_completion_tokens 0", chatBody(png, map[string]any{"max_completion_tokens": 0}), 400, "max_completion_tokens", "at most 60", true},
		{"temperature 3", chatBody(png, map[string]any{"temperature": 3}), 400, "temperature", "0 to 2", true},
		{"top_p 0", chatBody(png, map[string]any{"top_p": 0}), 400, "top_p", "top_p", true},
		{"n as string", chatBody(png, map[string]any{"n": "two"}), 400, "n", "n", true},
		{"not JSON", []byte("{messages"), 400, "", "not valid JSON", false},
		{"no messages", []byte(`{"model":"m"}`), 400, "messages", "missing", true},
		{"messages not a list", msgs("hi"), 400, "messages", "list", true},
		{"empty messages", msgs([]any{}), 400, "messages", "empty", true},
		{"no image", msgs([]any{map[string]any{"role": "user", "content": "describe"}}), 400, "messages", "no message has an image_url", true},
		{"bad role", msgs([]any{map[string]any{"role": "robot", "content": "x"}}), 400, "messages[0].role", "robot", true},
		{"bad part type", msgs([]any{map[string]any{"role": "user", "content": []any{map[string]any{"type": "input_audio"}}}}), 400, "messages[0].content[0].type", "input_audio", true},
		{"content a number", msgs([]any{map[string]any{"role": "user", "content": 3}}), 400, "messages[0].content", "string or a list", true},
		{"image_url without url", msgs([]any{map[string]any{"role": "user", "content": []any{map[string]any{"type": "image_url", "image_url": map[string]any{}}}}}), 400, "messages[0].content[0].image_url", "url", true},
		{"too big", chatBody(dataURL("image/png", make([]byte, 1<<20)), nil), 413, "", "limit", false},
	} {
		resp, data := postChat(t, hs.URL, tc.body)
		var e struct {
			Error struct {
				Message string  `json:"message"`
				Type    string  `json:"type"`
				Param   *string `json:"param"`
				Code    any     `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(data, &e); err != nil || e.Error.Message == "" || e.Error.Type == "" {
			t.Errorf("%s: not an OpenAI error object: %d %s", tc.name, resp.StatusCode, data)
			continue
		}
		if !bytes.Contains(data, []byte(`"code":`)) || !bytes.Contains(data, []byte(`"param":`)) {
			t.Errorf("%s: error object lacks param/code keys: %s", tc.name, data)
		}
		if resp.StatusCode != tc.code || !strings.Contains(e.Error.Message, tc.mentions) {
			t.Errorf("%s: %d %q, want %d mentioning %q", tc.name, resp.StatusCode, e.Error.Message, tc.code, tc.mentions)
		}
		if tc.wantParam && (e.Error.Param == nil || *e.Error.Param != tc.param) {
			t.Errorf("%s: param %v, want %q (%s)", tc.name, e.Error.Param, tc.param, e.Error.Message)
		}
	}
}

// With --allow-fetch, http(s) image URLs are fetched under the same limits.
func TestChatFetch(t *testing.T) {
	img := pngBytes(t, testImage(5))
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cat.png":
			w.Header().Set("Content-Type", "image/png")
			w.Write(img)
		case "/page.html":
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html></html>"))
		case "/huge.png":
			w.Header().Set("Content-Type", "image/png")
			w.Write(make([]byte, 200<<10))
		default:
			http.NotFound(w, r)
		}
	}))
	defer src.Close()
	_, hs := newServer(t, Config{MaxWait: time.Millisecond, AllowFetch: true, MaxBody: 100 << 10})
	a, _ := chat(t, hs.URL, chatBody(src.URL+"/cat.png", nil))
	if text, _ := captionsAPI(t, hs.URL, "", img); a.Choices[0].Message.Content != text {
		t.Errorf("fetched image captioned %q, /v1/captions %q", a.Choices[0].Message.Content, text)
	}
	for path, code := range map[string]int{"/page.html": 400, "/missing.png": 400, "/huge.png": 413} {
		resp, data := postChat(t, hs.URL, chatBody(src.URL+path, nil))
		if resp.StatusCode != code || !bytes.Contains(data, []byte(`"error"`)) {
			t.Errorf("%s: %d %s, want %d", path, resp.StatusCode, data, code)
		}
	}
}

func TestModels(t *testing.T) {
	_, hs := newServer(t, Config{ModelName: "coco-mlp"})
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID, Object string
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(get(t, hs.URL+"/v1/models", 200)), &list); err != nil {
		t.Fatal(err)
	}
	if list.Object != "list" || len(list.Data) != 1 || list.Data[0].ID != "coco-mlp" || list.Data[0].Object != "model" {
		t.Errorf("/v1/models: %+v", list)
	}
	get(t, hs.URL+"/v1/models/coco-mlp", 200)
	get(t, hs.URL+"/v1/models/gpt-4o", 404)
}

// /v1/captions?stream=true sends a token event per token, then the caption.
func TestCaptionsStream(t *testing.T) {
	_, hs := newServer(t, Config{MaxWait: time.Millisecond})
	img := pngBytes(t, testImage(6))
	text, toks := captionsAPI(t, hs.URL, "max_tokens=9", img)
	resp, err := http.Post(hs.URL+"/v1/captions?max_tokens=9&stream=true", "image/png", bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var (
		events []string
		deltas []string
		ids    []int
		final  map[string]any
	)
	sc := bufio.NewScanner(resp.Body)
	ev := ""
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "event: "); ok {
			ev = name
			events = append(events, name)
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		switch ev {
		case "token":
			var te TokenEvent
			json.Unmarshal([]byte(data), &te)
			ids = append(ids, te.Token)
			deltas = append(deltas, te.Text)
		case "caption":
			json.Unmarshal([]byte(data), &final)
		}
	}
	if len(events) != len(toks)+1 || events[len(events)-1] != "caption" || final == nil {
		t.Fatalf("events %v for %d tokens", events, len(toks))
	}
	if !reflect.DeepEqual(ids, toks) || final["caption"] != text || !reflect.DeepEqual(tokensOf(final), toks) {
		t.Errorf("streamed tokens %v caption %q; /v1/captions %v %q", ids, final["caption"], toks, text)
	}
	if got := strings.Join(deltas, ""); !strings.HasPrefix(text, got) || len(text)-len(got) > 3*len("\uFFFD") {
		t.Errorf("token texts %q are not the caption %q less at most a cut character", got, text)
	}
}

// textStream's deltas never split a character, hold back a space the
// clean-up may remove, and concatenate to the (cleaned) text.
func TestTextStream(t *testing.T) {
	tok, err := tokenizer.NewByteLevel(nil)
	if err != nil {
		t.Fatal(err)
	}
	id := func(b byte) int {
		// A byte-level vocabulary without merges maps each byte to one id.
		for i := 0; i < tok.VocabSize(); i++ {
			if raw, _ := tok.Token(i); raw == string([]byte{b}) {
				return i
			}
		}
		t.Fatalf("no token for byte %#x", b)
		return 0
	}
	raw := tok.Decode
	cleaned := func(ids []int) (string, error) {
		s, err := tok.Decode(ids)
		return tokenizer.CleanUpSpaces(s), err
	}
	for _, tc := range []struct {
		bytes  string
		text   func([]int) (string, error)
		deltas []string
	}{
		{"a€b", raw, []string{"a", "", "", "€", "b"}},
		{"\xe2\x82", raw, []string{"", ""}},         // cut short: all held back
		{"x\xffy", raw, []string{"x", "\xff", "y"}}, // an invalid byte passes at once
		{"\xe2z", raw, []string{"", "\xe2z"}},       // a lead byte that z breaks
		{"😀", raw, []string{"", "", "", "😀"}},       // 4 bytes
		{"\x82\x82", raw, []string{"\x82", "\x82"}}, // stray continuations
		{"a .b", cleaned, []string{"a", "", ".", "b"}},
		{"it isn't", cleaned, []string{"i", "t", "", " i", "s", "n", "'", "t"}},
		{"do n't", cleaned, []string{"d", "o", "", "", "", "n't"}},
		{"a b", cleaned, []string{"a", "", " b"}},
		{"x ' y", cleaned, []string{"x", "", "", "'", "y"}},
	} {
		ts := &textStream{text: tc.text}
		var got []string
		for _, b := range []byte(tc.bytes) {
			got = append(got, ts.add(id(b)))
		}
		tail, ok := ts.flush()
		whole, _ := tc.text(ts.tokens)
		if !ok || !reflect.DeepEqual(got, tc.deltas) || strings.Join(got, "")+tail != whole {
			t.Errorf("%q: deltas %q + tail %q (%v), want %q then %q", tc.bytes, got, tail, ok, tc.deltas, whole)
		}
		joined, _ := json.Marshal(strings.Join(append(got, tail), ""))
		want, _ := json.Marshal(whole)
		if !bytes.Equal(joined, want) {
			t.Errorf("%q: JSON of the deltas %s != JSON of the text %s", tc.bytes, joined, want)
		}
	}
}

// The chat endpoint goes through the server's limits: admission (429
// before the body is read), --max-beam for n and beam_size, --max-tokens,
// and the API key.
func TestChatLimits(t *testing.T) {
	s, hs := newServer(t, Config{MaxWait: time.Millisecond, MaxBeam: 2, MaxTokens: 5, APIKey: "k"})
	png := dataURL("image/png", pngBytes(t, testImage(1)))
	send := func(body []byte, key string) (int, string) {
		req, _ := http.NewRequest("POST", hs.URL+"/v1/chat/completions", bytes.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := send(chatBody(png, nil), ""); code != 401 {
		t.Errorf("no API key: %d %s", code, body)
	}
	for _, tc := range []struct {
		fields map[string]any
		code   int
		want   string
	}{
		{map[string]any{"n": 3, "temperature": 1}, 400, "--max-beam"},
		{map[string]any{"beam_size": 3}, 400, "--max-beam"},
		{map[string]any{"max_tokens": 6}, 400, "--max-tokens"},
		{map[string]any{"max_tokens": 5, "n": 2, "strategy": "beam"}, 200, `"finish_reason"`},
	} {
		if code, body := send(chatBody(png, tc.fields), "k"); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%v: %d %s, want %d mentioning %s", tc.fields, code, body, tc.code, tc.want)
		}
	}
	// Every admission place taken: 429 at once, as an OpenAI error.
	var releases []func()
	for {
		r, err := s.admit()
		if err != nil {
			break
		}
		releases = append(releases, r)
	}
	code, body := send(chatBody(png, nil), "k")
	for _, r := range releases {
		r()
	}
	if code != 429 || !strings.Contains(body, `"rate_limit_exceeded"`) {
		t.Errorf("server full: %d %s, want a 429 rate_limit_exceeded error", code, body)
	}
}
