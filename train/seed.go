package train

import "github.com/clipcap/clipcap/internal/torchrt"

// ManualSeed seeds libtorch's default generators (CPU and every CUDA device),
// as torch.manual_seed does. The trainer reseeds before every micro-batch so
// dropout masks depend only on (seed, step), not on what ran before: that is
// what makes a resumed run equal an uninterrupted one.
func ManualSeed(seed int64) { torchrt.ManualSeed(seed) }

// noGrad runs fn with autograd off on a pinned thread (see torchrt.NoGrad).
func noGrad(fn func()) { torchrt.NoGrad(fn) }
