-- wrk: POST /api/v1/carts/{token}/checkout, each request a different prepared cart.
-- Environment: CARTS (file of cart tokens; one file per wrk thread: CARTS.<n>), KEY.
local key = os.getenv("KEY")
local counter = 0
local carts = {}
local id = 0
setup = function(thread)
  id = id + 1
  thread:set("file", os.getenv("CARTS") .. "." .. id)
end
init = function()
  for l in io.lines(file) do if #l > 0 then carts[#carts + 1] = l end end
end
local body = '{"email":"bench@example.com","shipping_address":{"name":"Bench","line1":"1 Quay St","city":"Galway","country":"IE"}}'
request = function()
  counter = counter + 1
  local cart = carts[((counter - 1) % #carts) + 1]
  return wrk.format("POST", "/api/v1/carts/" .. cart .. "/checkout",
    { ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = "bench-" .. cart }, body)
end
