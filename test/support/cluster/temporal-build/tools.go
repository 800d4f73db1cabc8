//go:build tools

// Package tools pins, in one module, the Temporal binaries the tests build: the CLI (dev server
// and Web UI) and the production server with its SQL schema tool. Built in one dependency graph,
// which is exactly the CLI's own (go install github.com/temporalio/cli/cmd/temporal@v1.5.1), the
// server reuses every package the CLI build compiled (Go's build cache), instead of compiling the
// server's own, slightly older graph from scratch.
package tools

import (
	_ "github.com/temporalio/cli/cmd/temporal"
	_ "go.temporal.io/server/cmd/server"
	_ "go.temporal.io/server/cmd/tools/sql"
)
