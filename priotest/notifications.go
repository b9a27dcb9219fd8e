package priotest

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/priosdk/prio-go/generated"
	"github.com/priosdk/prio-go/internal/apiserver"
)

// logNotification records a notification about to be sent to one webhook;
// its status is DELIVERY_PENDING until the delivery ends. Callers hold s.mu.
func (st *state) logNotification(m generated.WebhookNotification) *notificationRecord {
	rec := &notificationRecord{model: m}
	st.ext.notifications = append(st.ext.notifications, rec)
	return rec
}

// noteDelivery sets the final status of a logged notification.
func (s *Server) noteDelivery(rec *notificationRecord, delivered bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.model.NotificationStatus = generated.DELIVERYFAILED
	if delivered {
		rec.model.NotificationStatus = generated.DELIVERYSUCCESS
	}
}

// GetNotifications lists the notifications sent to webhooks, newest first,
// with their delivery status.
func (h handlers) GetNotifications(_ context.Context, req apiserver.GetNotificationsRequestObject) (apiserver.GetNotificationsResponseObject, error) {
	s := h.s
	s.mu.Lock()
	all := make([]generated.WebhookNotification, 0, len(s.st.ext.notifications))
	for _, rec := range slices.Backward(s.st.ext.notifications) {
		all = append(all, rec.model)
	}
	s.mu.Unlock()
	pg, e := paginate(len(all), req.Params.ItemsPerPage, req.Params.StartIndex, req.Params.Page)
	if e != nil {
		return nil, e
	}
	items := all[pg.from:pg.to]
	return apiserver.GetNotifications200JSONResponse{
		ApiVersion: ptr(apiVersion),
		Data: generated.NotificationListResponseData{
			Kind: generated.KindNotification, Items: items,
			CurrentItemCount: len(items), ItemsPerPage: pg.perPage, StartIndex: pg.start,
			TotalItems: pg.total, PageIndex: pg.pageIndex, TotalPages: pg.totalPages,
		},
	}, nil
}

// GetSystemSpecification answers the OpenAPI document the sandbox serves
// and validates against, as JSON.
func (h handlers) GetSystemSpecification(context.Context, apiserver.GetSystemSpecificationRequestObject) (apiserver.GetSystemSpecificationResponseObject, error) {
	b, err := json.Marshal(h.s.spec.doc)
	if err != nil {
		return nil, err
	}
	var doc apiserver.GetSystemSpecification200JSONResponse
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	return doc, nil
}
