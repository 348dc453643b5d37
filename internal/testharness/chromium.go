package testharness

import "testing"

const installChromium = "apt-get install -y chromium"

// Chromium returns the path of a Chromium (or Chrome) binary for browser
// tests. When none is installed the test is skipped (fails with CI=true).
func Chromium(t testing.TB) string {
	t.Helper()
	bin := findBinary([]string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}, "/usr/bin", "/usr/local/bin", "/snap/bin")
	if bin == "" {
		unavailable(t, "Chromium", "no chromium on PATH or in /usr/bin", installChromium)
		return ""
	}
	return bin
}
