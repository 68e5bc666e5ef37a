package stream

import (
	"strings"

	wsplexv1 "github.com/wsplex/wsplex/proto/wsplex/v1"
)

// Metadata is what a stream's open request and response carry besides the
// name, like HTTP headers: keys map to one or more values. Keys are case
// insensitive and travel in lowercase: the methods lowercase them, and so
// does sending.
type Metadata map[string][]string

// Get returns the first value of key, or "".
func (m Metadata) Get(key string) string {
	if v := m[strings.ToLower(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns every value of key.
func (m Metadata) Values(key string) []string { return m[strings.ToLower(key)] }

// Set replaces the values of key.
func (m Metadata) Set(key string, values ...string) {
	m[strings.ToLower(key)] = append([]string(nil), values...)
}

// Add appends value to key's values.
func (m Metadata) Add(key, value string) {
	k := strings.ToLower(key)
	m[k] = append(m[k], value)
}

func (m Metadata) toProto() map[string]*wsplexv1.Values {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]*wsplexv1.Values, len(m))
	for k, v := range m {
		k = strings.ToLower(k) // keys set on the map directly may be mixed-case
		if prev := out[k]; prev != nil {
			prev.Values = append(prev.Values, v...)
			continue
		}
		out[k] = &wsplexv1.Values{Values: v}
	}
	return out
}

func metadataFromProto(p map[string]*wsplexv1.Values) Metadata {
	m := make(Metadata, len(p))
	for k, v := range p {
		k = strings.ToLower(k)
		m[k] = append(m[k], v.GetValues()...)
	}
	return m
}
