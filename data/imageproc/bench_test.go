package imageproc

import (
	"context"
	"os"
	"testing"
)

const benchJPEG = "testdata/in/rgb420_640x480.jpg"

func benchData(b *testing.B) []byte {
	data, err := os.ReadFile(benchJPEG)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkPreprocessJPEG: decode + resize + crop + normalize of a 640x480
// 4:2:0 JPEG to 224, one image at a time on one goroutine.
func BenchmarkPreprocessJPEG(b *testing.B) {
	data := benchData(b)
	p := NewPreprocessor(224)
	for b.Loop() {
		im, err := Decode(data, benchJPEG)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Preprocess(im); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPipelineJPEG: the same through Pipeline with GOMAXPROCS workers;
// ns/op is per image.
func BenchmarkPipelineJPEG(b *testing.B) {
	data := benchData(b)
	pl := &Pipeline{Pre: NewPreprocessor(224)}
	inputs := make([]Input, b.N)
	for i := range inputs {
		inputs[i] = Input{Name: benchJPEG, Data: data}
	}
	b.ResetTimer()
	err := pl.Each(context.Background(), inputs, func(r Result) error { return r.Err })
	if err != nil {
		b.Fatal(err)
	}
}

func BenchmarkDecodeJPEG(b *testing.B) {
	data := benchData(b)
	for b.Loop() {
		if _, err := Decode(data, benchJPEG); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCropRGB(b *testing.B) {
	im, err := Decode(benchData(b), benchJPEG)
	if err != nil {
		b.Fatal(err)
	}
	p := NewPreprocessor(224)
	for b.Loop() {
		if _, err := p.Crop(im); err != nil {
			b.Fatal(err)
		}
	}
}
