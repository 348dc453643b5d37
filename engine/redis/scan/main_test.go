package scan_test

import (
	"testing"

	"github.com/ferrymigrate/ferry/internal/testharness"
)

func TestMain(m *testing.M) { testharness.Main(m) }
