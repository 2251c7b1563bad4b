package live

// Smoothing keeps the shown caption from flickering between near-equal
// candidates on consecutive frames.
//
// The rule: the first caption is shown at once. After that, a caption
// different from the shown one replaces it only when
//   - it is the result for Confirm consecutive captioned frames (the same
//     text each time), or
//   - its per-token log-probability beats the shown caption's latest one
//     by at least Margin nats.
//
// A result equal to the shown text refreshes the shown caption's score and
// resets the pending candidate. Confirm 1 shows every new result at once
// (no smoothing); a negative Margin disables the score shortcut.
type Smoothing struct {
	Confirm int     // default 2
	Margin  float64 // default 0.5 nats per token; negative: off
}

// DefaultSmoothing: two wins in a row, or a 0.5 nat/token lead.
var DefaultSmoothing = Smoothing{Confirm: 2, Margin: 0.5}

// Smoother applies a Smoothing rule to a sequence of captions.
type Smoother struct {
	rule         Smoothing
	shown        string
	shownScore   float64
	has          bool
	pending      string
	pendingCount int
}

// NewSmoother starts with no caption shown. Confirm below 1 means 1.
func NewSmoother(rule Smoothing) *Smoother {
	if rule.Confirm < 1 {
		rule.Confirm = 1
	}
	return &Smoother{rule: rule}
}

// Shown is the caption on screen ("" before the first).
func (s *Smoother) Shown() string { return s.shown }

// Observe feeds one frame's caption and its per-token log-probability; it
// returns the caption to show and whether that changed.
func (s *Smoother) Observe(text string, score float64) (string, bool) {
	switch {
	case !s.has:
		s.has = true
		return s.show(text, score), true
	case text == s.shown:
		s.shownScore, s.pending, s.pendingCount = score, "", 0
		return s.shown, false
	case s.rule.Margin >= 0 && score >= s.shownScore+s.rule.Margin:
		return s.show(text, score), true
	}
	if text == s.pending {
		s.pendingCount++
	} else {
		s.pending, s.pendingCount = text, 1
	}
	if s.pendingCount >= s.rule.Confirm {
		return s.show(text, score), true
	}
	return s.shown, false
}

func (s *Smoother) show(text string, score float64) string {
	s.shown, s.shownScore, s.pending, s.pendingCount = text, score, "", 0
	return text
}
