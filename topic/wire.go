package topic

import (
	"strconv"

	"github.com/wsplex/wsplex"
	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
	"google.golang.org/protobuf/proto"
)

// The reserved metadata keys of SPEC.md §14.2.
const (
	keyTopic  = "wsplex-topic"
	keyEpoch  = "wsplex-topic-epoch"
	keyOffset = "wsplex-topic-offset"

	modeSubscribe = "subscribe"
	modePublish   = "publish"

	maxEpochLen = 64
)

// setPosition writes p into md as the two keys of SPEC.md §14.2.
func setPosition(md wsplex.Metadata, p Position) {
	md.Set(keyEpoch, p.Epoch)
	md.Set(keyOffset, strconv.FormatUint(p.Offset, 10))
}

// position reads the position of md; nil when md has none.
func position(md wsplex.Metadata) (*Position, error) {
	epochs, offsets := md.Values(keyEpoch), md.Values(keyOffset)
	if len(epochs) == 0 && len(offsets) == 0 {
		return nil, nil
	}
	if len(epochs) != 1 || len(offsets) != 1 {
		return nil, wsplex.Errorf(wsplex.CodeInvalidArgument, "%s and %s go together, once each", keyEpoch, keyOffset)
	}
	if len(epochs[0]) > maxEpochLen {
		return nil, wsplex.Errorf(wsplex.CodeInvalidArgument, "%s longer than %d bytes", keyEpoch, maxEpochLen)
	}
	o := offsets[0]
	off, err := strconv.ParseUint(o, 10, 64)
	if err != nil || len(o) > 20 || o[0] == '+' {
		return nil, wsplex.Errorf(wsplex.CodeInvalidArgument, "malformed %s %q", keyOffset, truncate(o))
	}
	return &Position{Epoch: epochs[0], Offset: off}, nil
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// encoded returns the TopicEvent that carries m, made once for all the
// subscribers it goes to.
func (m *Message) encoded() []byte {
	m.once.Do(func() {
		m.enc, _ = proto.Marshal(&wsplexv1.TopicEvent{Event: &wsplexv1.TopicEvent_Message{Message: &wsplexv1.TopicMessage{
			Offset: m.Offset, Prev: m.Prev, Data: m.Data,
		}}})
	})
	return m.enc
}

func gapEvent(p Position) *wsplexv1.TopicEvent {
	return &wsplexv1.TopicEvent{Event: &wsplexv1.TopicEvent_Gap{Gap: &wsplexv1.TopicGap{Epoch: p.Epoch, Offset: p.Offset}}}
}
