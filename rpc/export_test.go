package rpc

// Internals for the black-box tests.
var (
	FormatTimeout = formatTimeout
	ParseTimeout  = parseTimeout
)
