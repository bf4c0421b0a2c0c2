/*
 * vm_xml.c - the balloon device of a domain's XML and memsched's metadata element (libxml2).
 */
#include "vm_xml.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "sched.h"
#include "util.h"


static xmlDocPtr
xml_read(const char *text)
{
    return xmlReadMemory(text, (int)strnlen(text, INT_MAX), "libvirt.xml", NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

static bool
node_is(xmlNodePtr node, const char *name)
{
    return node->type == XML_ELEMENT_NODE && xmlStrcmp(node->name, BAD_CAST name) == 0;
}

/* The domain's <devices><memballoon> whose model is not "none", or NULL (also for XML that is
 * not a <domain>: then *is_domain is false). */
static xmlNodePtr
find_balloon(xmlDocPtr doc, bool *is_domain)
{
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;

    *is_domain = root && node_is(root, "domain");
    for (xmlNodePtr dev = *is_domain ? root->children : NULL; dev; dev = dev->next) {
        if (!node_is(dev, "devices"))
            continue;
        for (xmlNodePtr n = dev->children; n; n = n->next) {
            if (!node_is(n, "memballoon"))
                continue;
            xmlChar *model = xmlGetProp(n, BAD_CAST "model");
            bool none = model && xmlStrcmp(model, BAD_CAST "none") == 0;
            xmlFree(model);
            if (!none)
                return n;
        }
    }
    return NULL;
}

int
vm_xml_has_balloon(const char *xml, bool *has_balloon)
{
    xmlDocPtr doc = xml_read(xml);
    bool is_domain;

    *has_balloon = find_balloon(doc, &is_domain) != NULL;
    xmlFreeDoc(doc);
    return is_domain ? 0 : -EINVAL;
}

int
vm_xml_stats_period(const char *xml, unsigned *period_s)
{
    xmlDocPtr doc = xml_read(xml);
    bool is_domain;
    xmlNodePtr balloon = find_balloon(doc, &is_domain);

    *period_s = 0;
    for (xmlNodePtr st = balloon ? balloon->children : NULL; st; st = st->next) {
        if (!node_is(st, "stats"))
            continue;
        xmlChar *text = xmlGetProp(st, BAD_CAST "period");
        char *end = NULL;
        errno = 0;
        unsigned long v = text ? strtoul((const char *)text, &end, 10) : 0;
        if (text && errno == 0 && end != (char *)text && *end == '\0' && v <= UINT_MAX)
            *period_s = (unsigned)v;
        xmlFree(text);
    }
    xmlFreeDoc(doc);
    return is_domain ? 0 : -EINVAL;
}

/* A decimal number in [lo, hi], digits only: "+5", " 5", "5k" and "0x5" are refused. */
static bool
parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t v = 0;

    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* What each attribute may hold, for the message that refuses it. */
#define ALLOWED_MANAGED "yes or no"
#define ALLOWED_ATTRS   "managed, min_mib, max_mib, weight"

/* bad = 'NAME value="V" allowed="A"': the log line's key=value tail. A value is an operator's
 * text: at most 40 bytes of it, quotes and control characters shown as '?'. */
static void
refuse(char *bad, size_t bad_len, const char *name, const char *value, const char *allowed)
{
    char shown[41];
    size_t n = 0;

    for (; value && value[n] && n < sizeof(shown) - 1; n++)
        shown[n] = value[n] == '"' || (unsigned char)value[n] < 0x20 ? '?' : value[n];
    shown[n] = '\0';
    if (value)
        snprintf(bad, bad_len, "%s value=\"%s\" allowed=\"%s\"", name, shown, allowed);
    else
        snprintf(bad, bad_len, "%s allowed=\"%s\"", name, allowed);
}

/* One attribute into *ov; false when its value is not one it may hold. */
static bool
set_override(const char *name, const char *v, struct vm_overrides *ov, char *bad, size_t bad_len)
{
    char allowed[48];
    uint64_t n = 0, mib_max = SCHED_KIB_MAX / UTIL_KIB_PER_MIB;

    if (strcmp(name, "managed") == 0) {
        ov->managed = strcmp(v, "no") != 0;
        if (strcmp(v, "yes") == 0 || strcmp(v, "no") == 0)
            return true;
        refuse(bad, bad_len, name, v, ALLOWED_MANAGED);
        return false;
    }
    if (strcmp(name, "min_mib") == 0 || strcmp(name, "max_mib") == 0) {
        snprintf(allowed, sizeof(allowed), "an integer 1-%" PRIu64, mib_max);
        if (!parse_uint(v, 1, mib_max, &n)) {
            refuse(bad, bad_len, name, v, allowed);
            return false;
        }
        *(name[1] == 'i' ? &ov->min_kib : &ov->cap_kib) = n * UTIL_KIB_PER_MIB;
        return true;
    }
    if (strcmp(name, "weight") == 0) {
        snprintf(allowed, sizeof(allowed), "an integer 1-%u", (unsigned)SCHED_WEIGHT_MAX);
        if (!parse_uint(v, 1, SCHED_WEIGHT_MAX, &n)) {
            refuse(bad, bad_len, name, v, allowed);
            return false;
        }
        ov->weight = (uint32_t)n;
        return true;
    }
    refuse(bad, bad_len, name, NULL, ALLOWED_ATTRS);
    return false;
}

int
vm_xml_overrides(const char *xml, struct vm_overrides *ov, char *bad, size_t bad_len)
{
    xmlDocPtr doc = xml_read(xml);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    int rc = -EINVAL;

    *ov = (struct vm_overrides){.managed = true};
    if (!root || !node_is(root, "vm")) {
        refuse(bad, bad_len, "element", NULL, "<vm/> in " VM_XML_META_URI);
        goto out;
    }
    for (xmlAttrPtr a = root->properties; a; a = a->next) {
        xmlChar *value = xmlNodeListGetString(doc, a->children, 1);
        bool ok =
            set_override((const char *)a->name, value ? (const char *)value : "", ov, bad, bad_len);

        xmlFree(value);
        if (!ok) {
            *ov = (struct vm_overrides){.managed = true};
            goto out;
        }
    }
    if (ov->min_kib && ov->cap_kib && ov->min_kib > ov->cap_kib) {
        char value[24], allowed[40];
        snprintf(value, sizeof(value), "%" PRIu64, ov->min_kib / UTIL_KIB_PER_MIB);
        snprintf(allowed, sizeof(allowed), "at most max_mib (%" PRIu64 ")",
                 ov->cap_kib / UTIL_KIB_PER_MIB);
        refuse(bad, bad_len, "min_mib", value, allowed);
        *ov = (struct vm_overrides){.managed = true};
        goto out;
    }
    rc = 0;
out:
    xmlFreeDoc(doc);
    return rc;
}
