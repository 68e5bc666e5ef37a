package wsplex

import "strings"

// Metadata is what travels beside a stream's messages, like HTTP headers:
// the opener's request metadata, the acceptor's response metadata and the
// trailers sent with a stream's end. Keys map to one or more values; they
// are case insensitive and travel in lowercase: the methods lowercase
// them, and so does sending. A nil Metadata reads as empty.
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

// Del removes key.
func (m Metadata) Del(key string) { delete(m, strings.ToLower(key)) }

// Clone returns a deep copy of m; nil for nil.
func (m Metadata) Clone() Metadata {
	if m == nil {
		return nil
	}
	out := make(Metadata, len(m))
	for k, v := range m {
		out[k] = append([]string(nil), v...)
	}
	return out
}
