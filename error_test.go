package wsplex_test

import (
	"context"
	"errors"
	"testing"

	"github.com/wsplex/wsplex"
)

func TestCodeNames(t *testing.T) {
	for _, tc := range []struct {
		code wsplex.Code
		name string
	}{
		{wsplex.CodeOK, "ok"},
		{wsplex.CodeAlreadyExists, "already_exists"},
		{wsplex.CodeUnimplemented, "unimplemented"},
		{wsplex.CodeDataLoss, "data_loss"},
		{wsplex.CodeUnauthenticated, "unauthenticated"},
		{99, "code_99"},
	} {
		if got := tc.code.String(); got != tc.name {
			t.Errorf("%d: %q, want %q", uint32(tc.code), got, tc.name)
		}
		if tc.code.Known() != (tc.code <= wsplex.CodeUnauthenticated) {
			t.Errorf("%d: Known() = %v", uint32(tc.code), tc.code.Known())
		}
	}
}

func TestErrorMatchesContextErrors(t *testing.T) {
	if !errors.Is(wsplex.NewError(wsplex.CodeCanceled, ""), context.Canceled) {
		t.Error("canceled does not match context.Canceled")
	}
	if !errors.Is(wsplex.NewError(wsplex.CodeDeadlineExceeded, ""), context.DeadlineExceeded) {
		t.Error("deadline_exceeded does not match context.DeadlineExceeded")
	}
	if errors.Is(wsplex.NewError(wsplex.CodeInternal, ""), context.Canceled) {
		t.Error("internal matches context.Canceled")
	}
}

func TestMetadataLowercasesKeys(t *testing.T) {
	md := wsplex.Metadata{}
	md.Set("User-Agent", "a")
	md.Add("USER-AGENT", "b")
	if got := md.Values("user-agent"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("Values = %v", got)
	}
	clone := md.Clone()
	md.Del("user-agent")
	if md.Get("user-agent") != "" || clone.Get("User-Agent") != "a" {
		t.Fatalf("after Del: %v, clone %v", md, clone)
	}
}
