// Package qr renders text, such as a TOTP enrolment URI, as a QR code in a
// PNG image with the white quiet zone of 4 modules that scanners need around
// the code (github.com/boombuler/barcode draws none).
package qr

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"
)

const (
	// MaxContent is the longest content, in bytes, PNG encodes.
	MaxContent = 2048
	// MinSize and MaxSize bound the image's width and height in pixels.
	MinSize = 64
	MaxSize = 1024
	// QuietZone is the width of the white margin, in modules, on each side.
	QuietZone = 4
)

// PNG encodes content as a QR code (error correction level M, the most
// compact of numeric, alphanumeric or byte mode) and returns a size×size
// pixel PNG of it, greyscale, black on white.
//
// Every module is the same whole number of pixels, the largest for which the
// code and a quiet zone of QuietZone modules on each side fit in size; the
// code is centred and the pixels left over widen the white margin. PNG
// returns an error for empty content, content longer than MaxContent bytes,
// a size outside MinSize..MaxSize, or a size too small to give each module a
// pixel (long content needs a large image: at MaxContent bytes the code is
// 177 modules, 185 with the quiet zone).
func PNG(content string, size int) ([]byte, error) {
	switch {
	case content == "":
		return nil, errors.New("qr: empty content")
	case len(content) > MaxContent:
		return nil, fmt.Errorf("qr: content is %d bytes, more than %d", len(content), MaxContent)
	case size < MinSize || size > MaxSize:
		return nil, fmt.Errorf("qr: size %d is outside %d..%d", size, MinSize, MaxSize)
	}

	code, err := qr.Encode(content, qr.M, qr.Auto)
	if err != nil {
		return nil, fmt.Errorf("qr: encoding: %w", err)
	}
	modules := code.Bounds().Dx()
	px := size / (modules + 2*QuietZone)
	if px < 1 {
		return nil, fmt.Errorf("qr: content needs %d modules with the quiet zone, more than the size %d", modules+2*QuietZone, size)
	}
	scaled, err := barcode.Scale(code, modules*px, modules*px)
	if err != nil {
		return nil, fmt.Errorf("qr: scaling: %w", err)
	}

	img := image.NewGray(image.Rect(0, 0, size, size))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	off := (size - modules*px) / 2
	r := image.Rect(off, off, off+modules*px, off+modules*px)
	draw.Draw(img, r, scaled, scaled.Bounds().Min, draw.Src)

	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.DefaultCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("qr: writing PNG: %w", err)
	}
	return buf.Bytes(), nil
}
