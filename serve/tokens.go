package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/data/tokenizer"
	"github.com/clipcap/clipcap/model/generate"
)

// textStream turns a caption's tokens, one at a time, into text deltas
// whose concatenation is the caption's text (Captioner.Text of all its
// tokens). Two things can still change the end of the text as tokens
// arrive, so that end is held back until they cannot: GPT-2's byte-level
// tokens can stop inside a UTF-8 character (a delta never splits one, and
// JSON encoding, which replaces invalid bytes one by one, then gives the
// same text for the deltas as for the whole), and the clean-up of spaces
// before punctuation and contractions (" ." -> ".") can remove a space
// that the next token turns into the start of such a pattern.
type textStream struct {
	text   func(tokens []int) (string, error)
	tokens []int
	sent   string
}

func (t *textStream) add(id int) string {
	t.tokens = append(t.tokens, id)
	full, err := t.text(t.tokens)
	if err != nil || !strings.HasPrefix(full, t.sent) {
		return "" // flush reconciles
	}
	end := len(full) - max(incompleteTail([]byte(full[len(t.sent):])), cleanUpTail(full[len(t.sent):]))
	if end <= len(t.sent) {
		return ""
	}
	d := full[len(t.sent):end]
	t.sent = full[:end]
	return d
}

// flush returns what add held back. ok is false when the final text does
// not extend what was sent (a clean-up cascade no hold-back foresaw).
func (t *textStream) flush() (string, bool) {
	full, err := t.text(t.tokens)
	if err != nil || !strings.HasPrefix(full, t.sent) {
		return "", false
	}
	d := full[len(t.sent):]
	t.sent = full
	return d, true
}

// cleanUpTail is the length of the longest suffix of s that a clean-up
// pattern (all start with a space, at most 4 bytes) could still begin.
func cleanUpTail(s string) int {
	for n := min(3, len(s)); n > 0; n-- {
		suffix := s[len(s)-n:]
		for _, p := range tokenizer.CleanUpPatterns() {
			if len(p) > n && strings.HasPrefix(p, suffix) {
				return n
			}
		}
	}
	return 0
}

// incompleteTail is the length of a trailing UTF-8 sequence in b that more
// bytes could still complete (0 when b ends on a whole character or on
// bytes that are invalid whatever follows).
func incompleteTail(b []byte) int {
	for i := 1; i <= utf8.UTFMax-1 && i <= len(b); i++ {
		c := b[len(b)-i]
		if c&0xC0 == 0x80 { // continuation byte: look further back
			continue
		}
		if c >= 0xC0 && !utf8.FullRune(b[len(b)-i:]) {
			return i
		}
		return 0
	}
	return 0
}

// relay carries a job's tokens from the batcher to the request's
// goroutine, which turns them into text deltas.
type relay struct {
	ch     chan [2]int // {choice, token}
	texts  []*textStream
	tokens [][]int
}

func newRelay(text func([]int) (string, error), choices, maxTokens int) *relay {
	r := &relay{ch: make(chan [2]int, choices*maxTokens+1), texts: make([]*textStream, choices), tokens: make([][]int, choices)}
	for i := range r.texts {
		r.texts[i] = &textStream{text: text}
	}
	return r
}

// onToken is the job's callback: never blocking, since the channel holds
// every token a job can produce (a lost one would be re-sent from the
// result anyway).
func (r *relay) onToken(choice, token int) {
	select {
	case r.ch <- [2]int{choice, token}:
	default:
	}
}

// emitFunc receives one token of a choice and the text it completes.
type emitFunc func(choice, token int, delta string) error

func (r *relay) deliver(ev [2]int, emit emitFunc) error {
	c, tok := ev[0], ev[1]
	if c >= len(r.texts) {
		return nil
	}
	r.tokens[c] = append(r.tokens[c], tok)
	return emit(c, tok, r.texts[c].add(tok))
}

// awaitStreaming queues j and calls emit for every token as generation
// produces it. Once the result is in, choices (the captions the caller
// answers with) are reconciled with what was streamed: tokens not yet sent
// (n-best beams, which only exist at the end) are emitted then. It returns
// the result, its choices and each choice's held-back text tail.
func (s *Server) awaitStreaming(ctx context.Context, j *job, nChoices int, choicesOf func(result) []caption.Caption, emit emitFunc) (result, []caption.Caption, []string, error) {
	rl := newRelay(s.c.Text, nChoices, j.opt.MaxTokens)
	j.onToken = rl.onToken
	if err := s.submit(j); err != nil {
		return result{}, nil, nil, err
	}
	var res result
wait:
	for {
		select {
		case ev := <-rl.ch:
			if err := rl.deliver(ev, emit); err != nil {
				return result{}, nil, nil, err
			}
		case res = <-j.done:
			break wait
		case <-ctx.Done():
			return result{}, nil, nil, s.timeoutErr(ctx)
		}
	}
	if res.err != nil {
		if ctx.Err() != nil {
			return res, nil, nil, s.timeoutErr(ctx)
		}
		return res, nil, nil, res.err
	}
	for len(rl.ch) > 0 { // the batcher sent these before the result
		if err := rl.deliver(<-rl.ch, emit); err != nil {
			return result{}, nil, nil, err
		}
	}
	choices := choicesOf(res)
	tails := make([]string, len(choices))
	for c, cp := range choices {
		if c >= len(rl.tokens) {
			break
		}
		sent := rl.tokens[c]
		if len(sent) > len(cp.Tokens) || !slices.Equal(sent, cp.Tokens[:len(sent)]) {
			return res, nil, nil, fmt.Errorf("streamed tokens %v are not a prefix of choice %d's caption %v", sent, c, cp.Tokens)
		}
		for _, tok := range cp.Tokens[len(sent):] {
			if err := rl.deliver([2]int{c, tok}, emit); err != nil {
				return result{}, nil, nil, err
			}
		}
		tail, ok := rl.texts[c].flush()
		if !ok {
			return res, nil, nil, fmt.Errorf("choice %d: the streamed text is not a prefix of the caption %q", c, cp.Text)
		}
		tails[c] = tail
	}
	return res, choices, tails, nil
}

// sse writes server-sent events, sending the headers with the first one so
// that errors before it can still be plain JSON answers.
type sse struct {
	w       http.ResponseWriter
	started bool
}

func (e *sse) start() {
	if e.started {
		return
	}
	e.started = true
	h := e.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // proxies: do not buffer the stream
	e.w.WriteHeader(http.StatusOK)
}

// send writes one event (name "" = the default "message") with v as JSON,
// or raw data when v is a string, and flushes it.
func (e *sse) send(name string, v any) error {
	e.start()
	var data []byte
	if s, ok := v.(string); ok {
		data = []byte(s)
	} else {
		var err error
		if data, err = json.Marshal(v); err != nil {
			return err
		}
	}
	var b strings.Builder
	if name != "" {
		b.WriteString("event: " + name + "\n")
	}
	b.WriteString("data: ")
	b.Write(data)
	b.WriteString("\n\n")
	if _, err := e.w.Write([]byte(b.String())); err != nil {
		return err
	}
	return http.NewResponseController(e.w).Flush()
}

// errStreamed says the handler already wrote its answer as a stream.
var errStreamed = errors.New("answered as a stream")

// TokenEvent is a "token" event of POST /v1/captions?stream=true: one
// generated token and the text it completes (possibly empty when the
// token ends inside a UTF-8 character).
type TokenEvent struct {
	Token int    `json:"token"`
	Text  string `json:"text"`
}

// streamCaption answers /v1/captions?stream=true as server-sent events: a
// "token" event per generated token (beam search: the best caption's, once
// found), then a "caption" event with the Response, or an "error" event.
// The caption is the concatenation of the token texts, plus the bytes of a
// last character the length limit cut short, if any.
func (s *Server) streamCaption(ctx context.Context, w http.ResponseWriter, px []float32, opt generate.Options, start time.Time) error {
	out := &sse{w: w}
	j := s.newJob(ctx, px, opt)
	res, _, _, err := s.awaitStreaming(ctx, j, 1, func(r result) []caption.Caption { return []caption.Caption{r.cap} },
		func(_, tok int, delta string) error { return out.send("token", TokenEvent{Token: tok, Text: delta}) })
	if err != nil {
		if !out.started {
			return err
		}
		out.send("error", map[string]string{"error": err.Error()})
		return errStreamed
	}
	out.send("caption", Response{Caption: res.cap.Text, Tokens: res.cap.Tokens, BatchSize: res.batch, Timings: Timings{
		QueueMS: ms(res.queue), EncodeMS: ms(res.enc), GenerateMS: ms(res.gen), TotalMS: ms(time.Since(start))}})
	return errStreamed
}

// wantStream reads a boolean "stream" option.
func wantStream(form map[string][]string) bool {
	v := form["stream"]
	if len(v) == 0 {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(v[0])) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}
