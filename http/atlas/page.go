package atlas

import (
	"net/http"
	"net/url"
	"strconv"
)

const (
	defaultItemsPerPage = 100
	maxItemsPerPage     = 500
	// maxPageNum is the largest pageNum accepted.
	maxPageNum = 1_000_000
)

// link is one of Atlas's RFC 5988 links.
type link struct {
	Href string `json:"href"`
	Rel  string `json:"rel"`
}

// page is a list request's paging: Atlas's itemsPerPage, pageNum (1-based)
// and includeCount.
type page struct {
	num, size    int
	includeCount bool
}

func (p page) offset() int { return (p.num - 1) * p.size }

func parsePage(r *http.Request) (page, error) {
	p := page{num: 1, size: defaultItemsPerPage, includeCount: true}
	q := r.URL.Query()
	if s := q.Get("itemsPerPage"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxItemsPerPage {
			return p, fieldErr("INVALID_QUERY_PARAMETER", "itemsPerPage", "must be an integer from 1 to %d, not %q", maxItemsPerPage, s)
		}
		p.size = n
	}
	if s := q.Get("pageNum"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageNum {
			return p, fieldErr("INVALID_QUERY_PARAMETER", "pageNum", "must be an integer from 1 to %d, not %q", maxPageNum, s)
		}
		p.num = n
	}
	inc, err := parseBool(r, "includeCount", true)
	if err != nil {
		return p, err
	}
	p.includeCount = inc
	return p, nil
}

// listBody is Atlas's paginated list: {links, results, totalCount}; with
// envelope=true the results object itself carries the status.
type listBody struct {
	Links      []link `json:"links"`
	Results    any    `json:"results"`
	Status     *int   `json:"status,omitempty"`
	TotalCount *int   `json:"totalCount,omitempty"`
}

// baseURL is the scheme and host the caller used.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

// selfLink is the link to a resource path.
func selfLink(r *http.Request, path string) []link {
	return []link{{Href: baseURL(r) + path, Rel: "self"}}
}

// newList builds a page of results with its self/next/previous links.
func newList(r *http.Request, p page, results any, total int) *listBody {
	pageURL := func(n int) string {
		q := url.Values{}
		for k, v := range r.URL.Query() {
			q[k] = v
		}
		q.Set("pageNum", strconv.Itoa(n))
		q.Set("itemsPerPage", strconv.Itoa(p.size))
		return baseURL(r) + r.URL.Path + "?" + q.Encode()
	}
	l := &listBody{Results: results, Links: []link{{Href: pageURL(p.num), Rel: "self"}}}
	if p.num > 1 {
		l.Links = append(l.Links, link{Href: pageURL(p.num - 1), Rel: "previous"})
	}
	// No next link past the last page pageNum may name.
	if p.num*p.size < total && p.num < maxPageNum {
		l.Links = append(l.Links, link{Href: pageURL(p.num + 1), Rel: "next"})
	}
	if p.includeCount {
		t := total
		l.TotalCount = &t
	}
	return l
}

// slicePage returns the page of items held in memory.
func slicePage[T any](items []T, p page) []T {
	off := p.offset()
	if off >= len(items) {
		return []T{}
	}
	end := off + p.size
	if end > len(items) {
		end = len(items)
	}
	return items[off:end]
}
