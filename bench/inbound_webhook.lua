-- wrk script for bench/inbound_webhook.py: POST pre-signed SNS notifications to /webhooks/sns/.
-- BENCH_BODIES names a file of lines "<SNS MessageId>\t<JSON body>"; each wrk thread walks its own
-- stride of it, so no two requests carry the same notification until the file is used up.

local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  threads = tonumber(args[1]) or 1
  topic = args[2] or ""
  ids, bodies = {}, {}
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    local tab = string.find(line, "\t", 1, true)
    table.insert(ids, string.sub(line, 1, tab - 1))
    table.insert(bodies, string.sub(line, tab + 1))
  end
  next_index = id + 1
end

function request()
  local i = next_index
  next_index = next_index + threads
  if next_index > #bodies then
    next_index = ((next_index - 1) % #bodies) + 1
  end
  local headers = {
    ["Content-Type"] = "text/plain; charset=UTF-8",
    ["User-Agent"] = "Amazon Simple Notification Service Agent",
    ["x-amz-sns-message-type"] = "Notification",
    ["x-amz-sns-message-id"] = ids[i],
    ["x-amz-sns-topic-arn"] = topic,
  }
  return wrk.format("POST", nil, headers, bodies[i])
end
