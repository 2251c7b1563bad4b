package serve

// The OpenAI-compatible API: POST /v1/chat/completions captions the image
// of a chat message (an image_url part), as vision chat servers do, so
// clients and real-time webcam pages written for them work unchanged; GET
// /v1/models lists the model. clipcap only captions: text parts (prompts)
// are accepted and ignored, which every answer says in its
// system_fingerprint and, when the request had text, an X-Clipcap-Prompt
// header.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/model/generate"
)

// Fingerprint is the system_fingerprint of every chat answer.
const Fingerprint = "clipcap-image-captioner-prompt-ignored"

var serveStart = time.Now()

func (s *Server) routeOpenAI(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/chat/completions", s.handleChat)
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []any{s.modelInfo()}})
	})
	mux.HandleFunc("GET /v1/models/{id}", func(w http.ResponseWriter, r *http.Request) {
		if id := r.PathValue("id"); id != s.cfg.ModelName {
			writeAPIError(w, &apiError{Status: http.StatusNotFound, Message: fmt.Sprintf("model %q does not exist; this server has %q", id, s.cfg.ModelName),
				Type: "invalid_request_error", Param: "model", Code: "model_not_found"})
			return
		}
		writeJSON(w, http.StatusOK, s.modelInfo())
	})
}

func (s *Server) modelInfo() map[string]any {
	return map[string]any{"id": s.cfg.ModelName, "object": "model", "created": serveStart.Unix(), "owned_by": "clipcap"}
}

// apiError is an OpenAI-style error: {"error": {message, type, param, code}}.
type apiError struct {
	Status  int    `json:"-"`
	Message string `json:"message"`
	Type    string `json:"type"`
	Param   any    `json:"param"` // string or null
	Code    any    `json:"code"`  // string or null
}

func (e *apiError) Error() string { return e.Message }

// badField is a 400 about one request field.
func badField(param, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...), Type: "invalid_request_error", Param: param}
}

// toAPIError maps the server's errors (httpError from the shared paths) to
// OpenAI's kinds.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	e := &apiError{Status: http.StatusInternalServerError, Message: err.Error(), Type: "server_error"}
	var he *httpError
	if errors.As(err, &he) {
		e.Status, e.Message = he.code, he.msg
		switch {
		case he.code == http.StatusTooManyRequests:
			e.Type, e.Code = "rate_limit_error", "rate_limit_exceeded"
		case he.code == http.StatusRequestEntityTooLarge:
			e.Type, e.Code = "invalid_request_error", "payload_too_large"
		case he.code == http.StatusGatewayTimeout:
			e.Type, e.Code = "server_error", "timeout"
		case he.code < 500:
			e.Type = "invalid_request_error"
		}
	}
	return e
}

func writeAPIError(w http.ResponseWriter, e *apiError) {
	if e.Param == "" {
		e.Param = nil
	}
	if e.Code == "" {
		e.Code = nil
	}
	writeJSON(w, e.Status, map[string]any{"error": e})
}

// chatRequest is the part of OpenAI's request clipcap reads. Pointers tell
// an absent field from a zero one. Strategy, BeamSize and TopK are
// clipcap's own extensions (the /v1/captions options).
type chatRequest struct {
	Model               string          `json:"model"`
	Messages            json.RawMessage `json:"messages"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	Seed                *int64          `json:"seed"`
	N                   *int            `json:"n"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Strategy string `json:"strategy"`
	BeamSize *int   `json:"beam_size"`
	TopK     *int   `json:"top_k"`
}

// ChatCompletion is the non-streaming answer.
type ChatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint"`
	Choices           []ChatChoice `json:"choices"`
	Usage             *ChatUsage   `json:"usage,omitempty"`
}

// ChatChoice is one caption; Message in answers, Delta in stream chunks.
type ChatChoice struct {
	Index        int          `json:"index"`
	Message      *ChatMessage `json:"message,omitempty"`
	Delta        *ChatMessage `json:"delta,omitempty"`
	Logprobs     any          `json:"logprobs"`
	FinishReason *string      `json:"finish_reason"`
}

// ChatMessage is an assistant message or a chunk's delta of one.
type ChatMessage struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

// ChatUsage counts the image prefix as the prompt.
type ChatUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// chatCall is a parsed, validated request.
type chatCall struct {
	image     []byte
	hadText   bool
	opt       generate.Options // merged with the model's defaults
	n         int
	nBest     bool // n > 1 by beam search: the best n beams
	stream    bool
	withUsage bool
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.met.inflight.Add(1)
	defer s.met.inflight.Add(-1)
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	code := http.StatusOK
	// Admission before the body, as for /v1/captions.
	release, err := s.admit()
	if err == nil {
		err = s.chat(ctx, w, r)
		release()
	}
	if err != nil && !errors.Is(err, errStreamed) {
		e := toAPIError(err)
		var he *httpError
		if errors.As(err, &he) && he.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(he.retryAfter))
		}
		code = e.Status
		writeAPIError(w, e)
	}
	s.met.request(code, time.Since(start).Seconds())
}

func (s *Server) chat(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	call, err := s.parseChat(ctx, w, r)
	if err != nil {
		return err
	}
	if call.hadText {
		w.Header().Set("X-Clipcap-Prompt", "ignored: clipcap captions the image and does not read text")
	}
	px, err := s.decodeImage(ctx, call.image, "image_url")
	if err != nil {
		return err
	}
	j := s.newJob(ctx, px, call.opt)
	if !call.nBest {
		j.n = call.n
	}
	choicesOf := func(res result) []caption.Caption {
		if call.nBest {
			return append([]caption.Caption{res.cap}, res.cap.Alternatives[:call.n-1]...)
		}
		return res.caps
	}
	id := newCompletionID()
	base := ChatCompletion{ID: id, Created: time.Now().Unix(), Model: s.cfg.ModelName, SystemFingerprint: Fingerprint}
	if call.stream {
		return s.streamChat(ctx, w, j, call, base, choicesOf)
	}
	res, err := s.awaitJob(ctx, j)
	if err != nil {
		return err
	}
	if call.nBest && len(res.cap.Alternatives) < call.n-1 {
		return fmt.Errorf("beam search returned %d beams for n=%d", len(res.cap.Alternatives)+1, call.n)
	}
	choices := choicesOf(res)
	base.Object = "chat.completion"
	base.Usage = s.usage(choices)
	for i, c := range choices {
		text := c.Text
		base.Choices = append(base.Choices, ChatChoice{Index: i, Message: &ChatMessage{Role: "assistant", Content: &text}, FinishReason: finishReason(c)})
	}
	if s.observeChat != nil {
		s.observeChat(id, choices)
	}
	writeJSON(w, http.StatusOK, base)
	return nil
}

// streamChat answers as chat.completion.chunk events: a role chunk per
// choice, one chunk per generated token, a final chunk per choice with its
// finish_reason (and a last character's bytes the length limit cut, if
// any), a usage chunk when asked, then [DONE].
func (s *Server) streamChat(ctx context.Context, w http.ResponseWriter, j *job, call chatCall, base ChatCompletion, choicesOf func(result) []caption.Caption) error {
	out := &sse{w: w}
	base.Object = "chat.completion.chunk"
	chunk := func(c ChatChoice) error {
		m := base
		m.Choices = []ChatChoice{c}
		return out.send("", m)
	}
	content := func(s string) *ChatMessage { return &ChatMessage{Content: &s} }
	empty := ""
	for i := 0; i < call.n; i++ {
		if err := chunk(ChatChoice{Index: i, Delta: &ChatMessage{Role: "assistant", Content: &empty}}); err != nil {
			return errStreamed
		}
	}
	_, choices, tails, err := s.awaitStreaming(ctx, j, call.n, choicesOf, func(c, _ int, delta string) error {
		return chunk(ChatChoice{Index: c, Delta: content(delta)})
	})
	if err != nil {
		// Headers are out: the error goes in the stream, as OpenAI does.
		out.send("", map[string]any{"error": toAPIError(err)})
		return errStreamed
	}
	for i, c := range choices {
		d := &ChatMessage{}
		if tails[i] != "" {
			d = content(tails[i])
		}
		if chunk(ChatChoice{Index: i, Delta: d, FinishReason: finishReason(c)}) != nil {
			return errStreamed
		}
	}
	if call.withUsage {
		m := base
		m.Choices = []ChatChoice{}
		m.Usage = s.usage(choices)
		out.send("", m)
	}
	if s.observeChat != nil {
		s.observeChat(base.ID, choices)
	}
	out.send("", "[DONE]")
	return errStreamed
}

func finishReason(c caption.Caption) *string {
	r := "length"
	if c.Stopped {
		r = "stop"
	}
	return &r
}

func (s *Server) usage(choices []caption.Caption) *ChatUsage {
	u := &ChatUsage{PromptTokens: int(s.c.Model.PrefixLength())}
	for _, c := range choices {
		u.CompletionTokens += len(c.Tokens)
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

func newCompletionID() string {
	var b [12]byte
	rand.Read(b[:])
	return "chatcmpl-" + hex.EncodeToString(b[:])
}

// parseChat reads and validates a request: the body (bounded), the image
// of the last message that has one, and the decoding options.
func (s *Server) parseChat(ctx context.Context, w http.ResponseWriter, r *http.Request) (chatCall, error) {
	var call chatCall
	if r.ContentLength > s.cfg.MaxBody {
		return call, errorf(http.StatusRequestEntityTooLarge, "request body of %d bytes exceeds the limit of %d", r.ContentLength, s.cfg.MaxBody)
	}
	done := s.guardBody(w, r)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	done(err == nil)
	if err != nil {
		var mb *http.MaxBytesError
		switch {
		case errors.As(err, &mb):
			return call, errorf(http.StatusRequestEntityTooLarge, "request body exceeds the limit of %d bytes", s.cfg.MaxBody)
		case errors.Is(err, errSlowBody):
			return call, errorf(http.StatusRequestTimeout, "%v: the body must arrive within %v, at %d bytes/s or more after the first second",
				err, s.cfg.BodyTimeout, s.cfg.MinBodyRate)
		}
		return call, errorf(http.StatusBadRequest, "reading the request: %v", err)
	}
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return call, badField(te.Field, "%s: want %s, got a JSON %s", te.Field, te.Type, te.Value)
		}
		return call, badField("", "the request body is not valid JSON: %v", err)
	}
	if call.image, call.hadText, err = s.messageImage(ctx, req.Messages); err != nil {
		return call, err
	}
	call.stream = req.Stream
	call.withUsage = req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	call.opt, call.n, call.nBest, err = s.chatOptions(req)
	return call, err
}

// chatOptions maps OpenAI's sampling fields onto decoding options.
// Absent fields keep the model's defaults, so a request without them gets
// the caption /v1/captions gives; temperature 0 is greedy decoding and
// another temperature (or top_p) samples; n > 1 samples n captions, or
// returns the n best beams when the strategy is beam search.
func (s *Server) chatOptions(req chatRequest) (generate.Options, int, bool, error) {
	var o generate.Options
	st, err := generate.ParseStrategy(req.Strategy)
	if err != nil {
		return o, 0, false, badField("strategy", "%v", err)
	}
	o.Strategy = st
	modelMax := int(s.c.Model.Cfg.GPT2.NPositions - s.c.Model.PrefixLength())
	mt, field := req.MaxTokens, "max_tokens"
	if mt == nil {
		mt, field = req.MaxCompletionTokens, "max_completion_tokens"
	}
	if mt != nil {
		if *mt < 1 || *mt > modelMax {
			return o, 0, false, badField(field, "%s %d: this model writes at most %d tokens (GPT-2's %d positions less the %d-token image prefix)",
				field, *mt, modelMax, s.c.Model.Cfg.GPT2.NPositions, s.c.Model.PrefixLength())
		}
		if *mt > s.cfg.MaxTokens {
			return o, 0, false, badField(field, "%s %d: this server writes at most %d tokens (serve --max-tokens)", field, *mt, s.cfg.MaxTokens)
		}
		o.MaxTokens = *mt
	}
	if t := req.Temperature; t != nil {
		if !(*t >= 0 && *t <= 2) {
			return o, 0, false, badField("temperature", "temperature %g: want a number from 0 to 2", *t)
		}
		if *t == 0 {
			if o.Strategy == "" {
				o.Strategy = generate.Greedy
			}
		} else {
			o.Temperature = *t
			if o.Strategy == "" {
				o.Strategy = generate.Sample
			}
		}
	}
	if p := req.TopP; p != nil {
		if !(*p > 0 && *p <= 1) {
			return o, 0, false, badField("top_p", "top_p %g: want a number in (0, 1]", *p)
		}
		if *p < 1 {
			o.TopP = *p
		}
		if o.Strategy == "" {
			o.Strategy = generate.Sample
		}
	}
	if k := req.TopK; k != nil {
		if *k < 0 {
			return o, 0, false, badField("top_k", "top_k %d: want 0 (off) or more", *k)
		}
		o.TopK = *k
	}
	if req.Seed != nil {
		o.Seed = *req.Seed
	}
	// n samples cost n generation rows and n-best beams a beam of n: both
	// stay within the server's beam limit.
	limit := s.cfg.MaxBeam
	if b := req.BeamSize; b != nil {
		if *b < 1 || *b > limit {
			return o, 0, false, badField("beam_size", "beam_size %d: want 1 to %d (serve --max-beam)", *b, limit)
		}
		o.BeamSize = *b
	}
	n := 1
	if req.N != nil {
		n = *req.N
		if n < 1 || n > limit {
			return o, 0, false, badField("n", "n %d: want 1 to %d (serve --max-beam)", n, limit)
		}
	}
	// The model's own defaults obey the server's caps too.
	o = s.c.DecodeOptions(o)
	o.BeamSize = min(o.BeamSize, limit)
	o.MaxTokens = min(o.MaxTokens, s.cfg.MaxTokens)
	nBest := false
	if n > 1 {
		switch o.Strategy {
		case generate.Greedy:
			return o, 0, false, badField("n", "n %d: greedy decoding has one caption per image; sample (temperature > 0) or use beam search for more", n)
		case generate.Beam:
			nBest = true
			o.BeamSize = max(o.BeamSize, n)
		}
	}
	return o, n, nBest, nil
}
