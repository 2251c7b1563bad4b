package serve

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/clipcap/clipcap/model/generate"
)

// With {"stream": true} the WebSocket sends each token of a frame as a
// partial message before the frame's caption.
func TestStreamTokens(t *testing.T) {
	c := tiny(t)
	_, hs := newServer(t, Config{MaxWait: time.Millisecond})
	ctx, conn := dialStream(t, hs.URL)
	frame := jpegBytes(t, testImage(11))
	conn.Write(ctx, websocket.MessageText, []byte(`{"strategy": "greedy", "max_tokens": 8, "stream": true}`))
	conn.Write(ctx, websocket.MessageBinary, frame)
	var toks []int
	var text strings.Builder
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m StreamMessage
		if err := json.Unmarshal(data, &m); err != nil || m.Error != "" || m.Frame != 1 {
			t.Fatalf("message %s: %v", data, err)
		}
		if !m.Partial {
			w := want(t, c, frame, generate.Options{Strategy: generate.Greedy, MaxTokens: 8})
			if !reflect.DeepEqual(m.Tokens, w.Tokens) || !reflect.DeepEqual(toks, w.Tokens) {
				t.Errorf("partials %v, caption %v, FromImages %v", toks, m.Tokens, w.Tokens)
			}
			if got := jsonText(text.String()); !strings.HasPrefix(m.Caption, got) || len(m.Caption)-len(got) > 3*len("\uFFFD") {
				t.Errorf("deltas %q are not the caption %q less at most a cut character", got, m.Caption)
			}
			return
		}
		if m.Token == nil || m.Caption != "" {
			t.Fatalf("partial message %s", data)
		}
		toks = append(toks, *m.Token)
		text.WriteString(m.Delta)
	}
}
