package priotest

import (
	"io"
	"net/http"
	"strings"
)

// adminHandler serves the /_sandbox/ endpoints, outside the API path and
// without authentication:
//
//	GET  /_sandbox/stats             Stats as JSON
//	GET  /_sandbox/faults            the current fault profile
//	PUT  /_sandbox/faults            replace it: a profile name or a profile document
//	POST /_sandbox/reset             forget all state (see Server.Reset)
//	GET  /_sandbox/requests          the recorded requests
//	GET  /_sandbox/vouchers/{ref}.pdf  the voucher of an order
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sandbox/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("GET /_sandbox/faults", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("PUT /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			errorf(http.StatusBadRequest, codeInvalidRequest, "%v", err).write(w)
			return
		}
		p, err := ParseProfile(string(b))
		if err != nil {
			errorf(http.StatusBadRequest, codeInvalidRequest, "%v", err).write(w)
			return
		}
		s.SetFaults(p)
		writeJSON(w, http.StatusOK, p)
	})
	mux.HandleFunc("POST /_sandbox/reset", func(w http.ResponseWriter, _ *http.Request) {
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_sandbox/requests", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(s.Requests()))
	})
	mux.HandleFunc("GET /_sandbox/vouchers/{file}", func(w http.ResponseWriter, r *http.Request) {
		ref, ok := strings.CutSuffix(r.PathValue("file"), ".pdf")
		s.mu.Lock()
		_, found := s.st.ordersByRef[ref]
		s.mu.Unlock()
		if !ok || !found {
			errorf(http.StatusNotFound, "NOT_FOUND", "No voucher %s.", r.PathValue("file")).write(w)
			return
		}
		pdf := voucherPDF(ref)
		w.Header().Set("Content-Type", "application/pdf")
		_, _ = io.WriteString(w, pdf)
	})
	mux.HandleFunc("/_sandbox/", func(w http.ResponseWriter, r *http.Request) {
		errorf(http.StatusNotFound, "NOT_FOUND", "No admin endpoint %s %s.", r.Method, r.URL.Path).write(w)
	})
	return mux
}
