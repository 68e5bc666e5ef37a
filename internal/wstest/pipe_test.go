package wstest_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/wsplex/wsplex/internal/wstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestPipeInBubble checks that a pair works inside a synctest bubble, where
// reads wait on the fake clock.
func TestPipeInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := wstest.Pipe(t)
		start := time.Now()
		go func() {
			time.Sleep(time.Hour)
			c.WriteMessage(websocket.BinaryMessage, []byte("late"))
		}()
		_, msg, err := s.ReadMessage()
		if err != nil || string(msg) != "late" {
			t.Fatalf("read %q, %v", msg, err)
		}
		if d := time.Since(start); d != time.Hour {
			t.Fatalf("message came after %v, want 1h", d)
		}
	})
}
