// Package prio is a client for the Prioticket Distributor API v3.8.
package prio
