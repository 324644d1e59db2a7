-- 16 requests per write. wrk counts each response, but records one latency
-- sample per batch (when the 16th response arrives) and then "corrects"
-- its histogram for coordinated omission with synthetic samples spaced by
-- the per-response interval, so none of its latency percentiles describe
-- batches here. The harness reports the mean batch latency instead
-- (Little's law: connections x 16 / requests per second).
local depth = 16

init = function(args)
    local reqs = {}
    for i = 1, depth do
        reqs[i] = wrk.format(nil, wrk.path)
    end
    batch = table.concat(reqs)
end

request = function()
    return batch
end
