package topic

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsplex/wsplex"
)

// TestMemoryHistoryExpires checks HistoryTTL: a message leaves the history
// when it is older, a subscriber resuming before it learns of the gap, and
// a topic left with neither history nor subscribers is forgotten, its
// next message starting a new epoch.
func TestMemoryHistoryExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := NewMemoryBroker(&MemoryOptions{HistoryTTL: time.Minute})
		p1, _ := b.Publish(ctx, "/a", []byte("1"))
		time.Sleep(40 * time.Second)
		p2, _ := b.Publish(ctx, "/a", []byte("2"))
		time.Sleep(30 * time.Second) // 1 is 70 s old, 2 is 30 s

		var got []string
		deliver := func(m *Message, err error) { got = append(got, string(m.Data)) }
		start, stop, err := b.Subscribe(ctx, "/a", &Position{Epoch: p1.Epoch}, deliver)
		if err != nil {
			t.Fatal(err)
		}
		stop()
		if start != p1 || len(got) != 1 || got[0] != "2" {
			t.Fatalf("start %v, got %q; want start %v (1 expired) and 2", start, got, p1)
		}

		time.Sleep(time.Minute)
		b.Publish(ctx, "/other", nil) // sweeps
		b.mu.Lock()
		_, kept := b.topics["/a"]
		b.mu.Unlock()
		if kept {
			t.Fatal("topic with no history and no subscribers kept")
		}
		p3, _ := b.Publish(ctx, "/a", []byte("3"))
		if p3.Epoch == p2.Epoch || p3.Offset != 1 {
			t.Fatalf("recreated topic at %v, after %v: want a new epoch", p3, p2)
		}
	})
}

// TestMemoryKeepsTopicWithSubscribers checks that a subscribed topic
// survives sweeps, so that its offsets go on in the same epoch.
func TestMemoryKeepsTopicWithSubscribers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := NewMemoryBroker(&MemoryOptions{HistoryTTL: time.Minute, HistorySize: -1})
		var got []*Message
		_, stop, _ := b.Subscribe(ctx, "/a", nil, func(m *Message, err error) { got = append(got, m) })
		defer stop()
		p1, _ := b.Publish(ctx, "/a", nil)
		time.Sleep(5 * time.Minute)
		b.Publish(ctx, "/other", nil)
		p2, _ := b.Publish(ctx, "/a", nil)
		if p2.Epoch != p1.Epoch || p2.Offset != 2 || len(got) != 2 || got[1].Prev != 1 {
			t.Fatalf("p1 %v p2 %v, %d delivered", p1, p2, len(got))
		}
	})
}

func FuzzPosition(f *testing.F) {
	f.Add("e", "0", true, true)
	f.Add("abc.1", "18446744073709551615", true, true)
	f.Add("", "-1", true, false)
	f.Add("x", "+5", true, true)
	f.Fuzz(func(t *testing.T, epoch, offset string, withEpoch, withOffset bool) {
		md := wsplex.Metadata{}
		if withEpoch {
			md.Set(keyEpoch, epoch)
		}
		if withOffset {
			md.Set(keyOffset, offset)
		}
		p, err := position(md)
		if err != nil {
			if wsplex.CodeOf(err) != wsplex.CodeInvalidArgument {
				t.Fatalf("error %v is not invalid_argument", err)
			}
			return
		}
		if p == nil {
			if withEpoch || withOffset {
				t.Fatal("a key given, no position and no error")
			}
			return
		}
		back := wsplex.Metadata{}
		setPosition(back, *p)
		q, err := position(back)
		if err != nil || *q != *p {
			t.Fatalf("%v round-trips to %v, %v", p, q, err)
		}
	})
}

func TestBackoff(t *testing.T) {
	if backoff(0) != 0 {
		t.Fatal("first retry waits")
	}
	for n := 1; n < 40; n++ {
		bound := min(10*time.Millisecond<<min(n, 9), 5*time.Second)
		for range 100 {
			if d := backoff(n); d < 0 || d >= bound {
				t.Fatalf("backoff(%d) = %v, want in [0, %v)", n, d, bound)
			}
		}
	}
}
