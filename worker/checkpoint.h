/* checkpoint.h: one binary file holding a training state, written atomically.
 *
 * Layout: magic "MMSCKPT\0" (8 bytes), format version (u32), section count
 * (u32), header length (u64), the header (a MessagePack manifest: step, epoch,
 * graph checksum, configuration), then for each section its length (u64) and
 * bytes, and last an xxHash3 (u64) of everything before it. A truncated or
 * corrupt file fails the checksum and is refused with a message; the file is
 * written under a temporary name and renamed, so a killed run leaves the last
 * complete checkpoint in place.
 */
#ifndef MMS_CHECKPOINT_H
#define MMS_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "mms_manifest.h"
#include "mms_status.h"

#define MMS_CKPT_FORMAT 1

typedef struct {
    void *data;   /* save: read from here; load: filled (caller buffer of len bytes) */
    size_t len;   /* bytes; on load it must match the file's section length */
    const char *name; /* for messages */
} mms_ckpt_section_t;

mms_status mms_ckpt_save(const char *path, const mms_manifest_t *header,
                         const mms_ckpt_section_t *sec, int nsec);
/* Reads and verifies path; *header (caller destroys) is the stored manifest.
 * Sections must have the stored lengths (a mismatch names the section). */
mms_status mms_ckpt_load(const char *path, mms_manifest_t **header, mms_ckpt_section_t *sec,
                         int nsec);

#endif
