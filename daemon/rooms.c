// SPDX-License-Identifier: MIT
/*
 * rooms.c - the table of allocator rooms (room.h).  An allocator heapfragd
 * recognises but cannot read (jemalloc, tcmalloc, mimalloc, or none found)
 * has an empty room that says why it has no census.
 */
#include "room.h"

extern const struct hf_room hf_glibc_room;
extern const struct hf_room hf_libptm_room;

static const struct hf_room jemalloc_room = {
	.kind = HF_ALLOC_JEMALLOC,
	.census_unavailable = "jemalloc keeps no chunk headers between its blocks (it files them "
			      "in extents and slabs), so heapfragd's census, which walks "
			      "ptmalloc-style heaps (glibc, libptm), cannot read it",
};

static const struct hf_room tcmalloc_room = {
	.kind = HF_ALLOC_TCMALLOC,
	.census_unavailable = "tcmalloc keeps no chunk headers between its blocks (it files them "
			      "in spans of size classes), so heapfragd's census, which walks "
			      "ptmalloc-style heaps (glibc, libptm), cannot read it",
};

static const struct hf_room mimalloc_room = {
	.kind = HF_ALLOC_MIMALLOC,
	.census_unavailable = "mimalloc keeps no chunk headers between its blocks (it files them "
			      "in pages of one size class), so heapfragd's census, which walks "
			      "ptmalloc-style heaps (glibc, libptm), cannot read it",
};

static const struct hf_room unknown_room = {
	.kind = HF_ALLOC_UNKNOWN,
	.census_unavailable = "heapfragd could not tell which allocator provides malloc to this "
			      "process",
};

const struct hf_room *const hf_rooms[] = {&hf_glibc_room, &hf_libptm_room};
const size_t hf_nr_rooms = sizeof(hf_rooms) / sizeof(hf_rooms[0]);

const struct hf_room *hf_room_of(enum hf_allocator kind)
{
	switch (kind) {
	case HF_ALLOC_GLIBC:
		return &hf_glibc_room;
	case HF_ALLOC_LIBPTM:
		return &hf_libptm_room;
	case HF_ALLOC_JEMALLOC:
		return &jemalloc_room;
	case HF_ALLOC_TCMALLOC:
		return &tcmalloc_room;
	case HF_ALLOC_MIMALLOC:
		return &mimalloc_room;
	default:
		return &unknown_room;
	}
}
