package caption

import (
	"strings"
	"testing"
)

func TestPrinter(t *testing.T) {
	c := Caption{Text: "a dog.", Tokens: []int{64, 3290, 13}, Score: -1.5}
	for _, tc := range []struct {
		p    Printer
		want string
	}{
		{Printer{}, "a dog.\n"},
		{Printer{Labels: true}, "x.png\ta dog.\n"},
		{Printer{JSON: true, Labels: true}, `{"input":"x.png","index":2,"caption":"a dog.","tokens":[64,3290,13],"score":-1.5}` + "\n"},
	} {
		var b strings.Builder
		tc.p.W = &b
		if err := tc.p.Print("x.png", 2, c); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.p, b.String(), tc.want)
		}
	}
}
