package wire

import (
	"reflect"
	"testing"

	"github.com/domination/domination/internal/testenv"
)

func TestDecodeActiveVisitorsReadsTheTopicRecord(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    ActiveVisitors
		wantErr string
	}{
		{"store", `{"account_id":1,"store_id":"uk","window":[1700000000,1700000010],"count":3}`,
			ActiveVisitors{AccountID: 1, StoreID: storePtr("uk"), Start: 1700000000, End: 1700000010, Count: 3}, ""},
		{"null store", `{"account_id":1,"store_id":null,"window":[0,10],"count":0}`,
			ActiveVisitors{AccountID: 1, Start: 0, End: 10}, ""},
		{"missing store is null", `{"account_id":1,"window":[0,10],"count":1}`,
			ActiveVisitors{AccountID: 1, Start: 0, End: 10, Count: 1}, ""},
		{"integral float window", `{"account_id":1,"store_id":"us","window":[1700000000.0,1.70000001e9],"count":2}`,
			ActiveVisitors{AccountID: 1, StoreID: storePtr("us"), Start: 1700000000, End: 1700000010, Count: 2}, ""},
		{"fractional window", `{"account_id":1,"window":[0.5,10],"count":2}`, ActiveVisitors{}, "whole number"},
		{"no account", `{"window":[0,10],"count":2}`, ActiveVisitors{}, "no account_id"},
		{"no count", `{"account_id":1,"window":[0,10]}`, ActiveVisitors{}, "no count"},
		{"negative count", `{"account_id":1,"window":[0,10],"count":-1}`, ActiveVisitors{}, "decode count"},
		{"one bound", `{"account_id":1,"window":[0],"count":1}`, ActiveVisitors{}, "1 bounds"},
		{"empty window", `{"account_id":1,"window":[10,10],"count":1}`, ActiveVisitors{}, "empty"},
		{"string account", `{"account_id":"1","window":[0,10],"count":1}`, ActiveVisitors{}, "decode count"},
		{"not json", `hello`, ActiveVisitors{}, "decode count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeActiveVisitors([]byte(tt.in))
			testenv.CheckErr(t, "DecodeActiveVisitors", err, tt.wantErr)
			if tt.wantErr != "" {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
