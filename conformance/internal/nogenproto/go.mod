// An empty google.golang.org/genproto: see the replace directive in
// ../../go.mod.
module google.golang.org/genproto

go 1.26.0
