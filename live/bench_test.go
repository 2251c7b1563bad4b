package live

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/internal/randmodel"
	"github.com/clipcap/clipcap/model/generate"
	"github.com/clipcap/clipcap/model/nn"
)

// BenchmarkLiveOverlap runs real-time captioning of a 30 fps 640x480 file
// (paced like a camera) with ViT-B/32 + GPT-2 small (random weights,
// 20-token greedy captions) per precision, with and without overlapping
// the next frame's CLIP encoding with the current decoding, and reports
// the frame→caption latency p50/p95 and captions/s of each. Run with
// -benchtime 1x; it writes a ~600 MB model to a temporary directory.
func BenchmarkLiveOverlap(b *testing.B) {
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s is not installed", tool)
		}
	}
	dir := b.TempDir()
	model := filepath.Join(dir, "model")
	if err := randmodel.Write(model, randmodel.Real()); err != nil {
		b.Fatal(err)
	}
	video := filepath.Join(dir, "cam.mp4")
	if err := ffmpeg("-f", "lavfi", "-i", "testsrc=s=640x480:r=30:d=12", "-c:v", "libx264", "-pix_fmt", "yuv420p", video); err != nil {
		b.Fatal(err)
	}
	opt := generate.Options{Strategy: generate.Greedy, MaxTokens: 20, StopTokens: []int{}}
	for _, p := range []nn.Precision{nn.FP32, nn.BF16, nn.Int8} {
		runtime.LockOSThread()
		c, err := caption.Load(model, caption.Options{Device: gotch.CPU, Precision: string(p)})
		runtime.UnlockOSThread()
		if err != nil {
			b.Fatal(err)
		}
		for _, overlap := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/overlap=%v", p, overlap), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					st, err := Run(context.Background(), c, Options{Source: video, Gen: opt, Overlap: overlap})
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(st.P50.Microseconds())/1e3, "p50-ms")
					b.ReportMetric(float64(st.P95.Microseconds())/1e3, "p95-ms")
					b.ReportMetric(st.CaptionsPerSec, "captions/s")
				}
			})
		}
	}
	os.RemoveAll(dir)
}
