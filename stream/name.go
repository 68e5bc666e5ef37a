package stream

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen is the longest stream name, in bytes.
const MaxNameLen = 1024

// CheckName reports whether name is a valid stream name: it starts with
// "/", has at most MaxNameLen bytes of valid UTF-8 and no control
// characters. Names look like URL paths ("/chat/room/42") or gRPC methods
// ("/echo.v1.Echo/Say").
func CheckName(name string) error {
	switch {
	case name == "" || name[0] != '/':
		return errors.New("wsplex/stream: stream name must start with \"/\"")
	case len(name) > MaxNameLen:
		return fmt.Errorf("wsplex/stream: stream name of %d bytes exceeds %d", len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return errors.New("wsplex/stream: stream name is not valid UTF-8")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("wsplex/stream: stream name contains control character %U", r)
		}
	}
	return nil
}
