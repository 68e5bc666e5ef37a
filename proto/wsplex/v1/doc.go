// Package wsplexv1 holds the wsplex wire schema, generated from
// wsplex.proto by `bash .ci/generate`. Import it as wsplexv1; never edit the
// generated file.
package wsplexv1
