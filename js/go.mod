// This file only marks js/ as a module of its own, so that the Go tool's
// ./... patterns in the wsplex module do not walk into node_modules.
module github.com/wsplex/wsplex/js

go 1.26.0
