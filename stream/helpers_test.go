package stream_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
)

func newHTTPServer(h http.Handler) *httptest.Server { return httptest.NewServer(h) }

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
