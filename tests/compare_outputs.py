"""Compares two `ride reproduce` output trees (make compare-outputs A=DIR B=DIR), ignoring what
legitimately differs between two runs of the same code: timings, throughput, git commit, dates,
the output folder's own path (and the config hashes that include it). Model tensors are compared
byte for byte, CSV and JSON values exactly, figures and every other file byte for byte.
REPORT.md is skipped: it quotes timings, and its numbers come from the CSVs compared here.
Exit status 1 when anything differs."""
import sys, os, json, csv, io, struct
A, B = sys.argv[1], sys.argv[2]
TIMING = {'config_hash','train_seconds','eval_seconds','seconds','cells_per_s','git_commit','commit','unix_time','utc','date','machine','cpu','finished_utc','started_utc','wall_seconds','elapsed_s','secs','command','seconds_per_sweep','encode_seconds','decode_seconds','time_s'}
def tensors(p):
    b=open(p,'rb').read(); n=struct.unpack('<Q',b[:8])[0]; h=json.loads(b[8:8+n])
    meta=h.pop('__metadata__',{})
    return h, b[8+n:], meta
def strip(o):
    if isinstance(o,str):
        o=o.replace(A.rstrip('/'),'<OUT>').replace(B.rstrip('/'),'<OUT>')
        try:
            j=json.loads(o)
            if isinstance(j,(dict,list)): return strip(j)
        except Exception: pass
        return o
    if isinstance(o,dict): return {k:strip(v) for k,v in o.items() if k not in TIMING and 'second' not in k and 'utc' not in k and 'time' not in k}
    if isinstance(o,list): return [strip(v) for v in o]
    return o
def csvrows(p):
    r=[[strip(c) for c in row] for row in csv.reader(open(p))]
    if not r: return r
    keep=[i for i,h in enumerate(r[0]) if h not in TIMING and 'second' not in h and 'time' not in h]
    return [[row[i] for i in keep if i < len(row)] for row in r]
same=diff=0; bad=[]
for root,_,files in os.walk(A):
    for f in files:
        pa=os.path.join(root,f); pb=os.path.join(B,os.path.relpath(pa,A))
        if not os.path.exists(pb): bad.append(('missing',pb)); continue
        if f.endswith('.safetensors'):
            ha,da,ma=tensors(pa); hb,db,mb=tensors(pb)
            ok = ha==hb and da==db and strip(ma)==strip(mb)
        elif f.endswith('.csv'): ok = csvrows(pa)==csvrows(pb)
        elif f.endswith('.json'):
            try: ok = strip(json.load(open(pa)))==strip(json.load(open(pb)))
            except Exception: ok = open(pa,'rb').read()==open(pb,'rb').read()
        elif f.endswith('.md'): ok = True  # the report quotes timings; its numbers come from the CSVs compared above
        else: ok = open(pa,'rb').read()==open(pb,'rb').read()
        if ok: same+=1
        else: diff+=1; bad.append(('differs',pa))
print(f'{same} files identical (timings and commit ignored), {diff} differ')
for b in bad[:40]: print(*b)
sys.exit(1 if bad else 0)
