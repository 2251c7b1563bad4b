package metrics

import (
	"path/filepath"
	"testing"
)

func benchTokenize(b *testing.B, caps []string) {
	b.ResetTimer()
	for b.Loop() {
		Tokenize(caps)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(caps)), "ns/caption")
}

func BenchmarkTokenizeBench30k(b *testing.B) {
	res, ann := benchCase(5000)
	var caps []string
	for _, c := range ann.Captions {
		caps = append(caps, c.Caption)
	}
	for _, c := range res {
		caps = append(caps, c.Caption)
	}
	benchTokenize(b, caps)
}

func BenchmarkTokenizeParity30k(b *testing.B) {
	ann, err := LoadAnnotations(filepath.Join("testdata", "parity_main_annotations.json"))
	if err != nil {
		b.Fatal(err)
	}
	var caps []string
	for len(caps) < 30000 {
		for _, c := range ann.Captions {
			caps = append(caps, c.Caption)
		}
	}
	benchTokenize(b, caps[:30000])
}
