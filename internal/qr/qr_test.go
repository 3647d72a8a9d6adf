package qr

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const otpauth = "otpauth://totp/Deadbolt%20Corp:zo%C3%AB%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Deadbolt%20Corp&algorithm=SHA1&digits=6&period=30"

// needTool returns the path of an external program the test needs. Without
// it the test fails under CI (which installs it) and is skipped elsewhere.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found on PATH (apt-get install -y %s): %v", name, pkg, err)
		}
		t.Skipf("%s not found on PATH (apt-get install -y %s)", name, pkg)
	}
	return p
}

func decodePNG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("png.Decode: %v", err)
	}
	return img
}

func isWhite(c color.Color) bool {
	g := color.GrayModel.Convert(c).(color.Gray)
	return g.Y == 0xff
}

// TestZbarimg decodes the images with Debian's zbarimg, an independent
// reader.
func TestZbarimg(t *testing.T) {
	zbarimg := needTool(t, "zbarimg", "zbar-tools")
	tests := []struct {
		name    string
		content string
		size    int
	}{
		{"otpauth 256", otpauth, 256},
		{"otpauth 64", otpauth, 64},
		{"otpauth 1024", otpauth, 1024},
		{"otpauth odd size", otpauth, 301},
		{"numeric", "0123456789", 64},
		{"alphanumeric", "HTTPS://EXAMPLE.COM/ABC", 100},
		{"long", "otpauth://totp/x?secret=" + strings.Repeat("ABCDEFGH", 100), 512},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := PNG(tt.content, tt.size)
			if err != nil {
				t.Fatalf("PNG(%q, %d): %v", tt.content, tt.size, err)
			}
			file := filepath.Join(dir, string(rune('a'+i))+".png")
			if err := os.WriteFile(file, b, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(zbarimg, "--raw", "-q", file).Output()
			if err != nil {
				t.Fatalf("zbarimg --raw -q %s: %v", file, err)
			}
			// zbarimg ends the decoded text with a newline.
			if got := strings.TrimSuffix(string(out), "\n"); got != tt.content {
				t.Errorf("zbarimg read %q, want %q", got, tt.content)
			}
		})
	}
}

func TestPNGImage(t *testing.T) {
	for _, size := range []int{MinSize, 65, 200, 256, 333, MaxSize} {
		b, err := PNG(otpauth, size)
		if err != nil {
			t.Fatalf("PNG(otpauth, %d): %v", size, err)
		}
		img := decodePNG(t, b)
		if got := img.Bounds(); got != image.Rect(0, 0, size, size) {
			t.Errorf("size %d: bounds = %v, want %v", size, got, image.Rect(0, 0, size, size))
		}

		// Find the black modules' bounding box: the quiet zone around it
		// must be white and at least 4 modules wide. The finder pattern in
		// the top left corner starts with a 7-module black run, so its
		// length gives the module size.
		minX, minY, maxX, maxY := size, size, -1, -1
		for y := range size {
			for x := range size {
				if !isWhite(img.At(x, y)) {
					minX, minY = min(minX, x), min(minY, y)
					maxX, maxY = max(maxX, x), max(maxY, y)
				}
			}
		}
		if maxX < 0 {
			t.Fatalf("size %d: image is all white", size)
		}
		run := 0
		for x := minX; x <= maxX && !isWhite(img.At(x, minY)); x++ {
			run++
		}
		if run%7 != 0 {
			t.Fatalf("size %d: finder pattern is %d px wide, not a multiple of 7", size, run)
		}
		px := run / 7
		w := maxX - minX + 1
		if h := maxY - minY + 1; w != h || w%px != 0 {
			t.Errorf("size %d: code is %dx%d px, want square with whole %d px modules", size, w, h, px)
		}
		margin := min(minX, minY, size-1-maxX, size-1-maxY)
		if margin < QuietZone*px {
			t.Errorf("size %d: quiet zone is %d px, want at least %d (4 modules of %d px)", size, margin, QuietZone*px, px)
		}
		for _, p := range []image.Point{{0, 0}, {size - 1, 0}, {0, size - 1}, {size - 1, size - 1}} {
			if !isWhite(img.At(p.X, p.Y)) {
				t.Errorf("size %d: corner %v is %v, want white", size, p, img.At(p.X, p.Y))
			}
		}
	}
}

func TestPNGErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		size    int
	}{
		{"empty", "", 256},
		{"too long", strings.Repeat("a", MaxContent+1), 1024},
		{"too small", otpauth, MinSize - 1},
		{"too large", otpauth, MaxSize + 1},
		{"zero size", otpauth, 0},
		{"negative size", otpauth, -256},
		{"too long for the size", strings.Repeat("a", MaxContent), MinSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := PNG(tt.content, tt.size); err == nil {
				t.Errorf("PNG(%d bytes, %d) = %d bytes, nil; want an error", len(tt.content), tt.size, len(b))
			}
		})
	}
}

func TestPNGMaxContent(t *testing.T) {
	content := strings.Repeat("a", MaxContent)
	b, err := PNG(content, 185)
	if err != nil {
		t.Fatalf("PNG(%d bytes, 185): %v", MaxContent, err)
	}
	if img := decodePNG(t, b); img.Bounds().Dx() != 185 {
		t.Errorf("width = %d, want 185", img.Bounds().Dx())
	}
}
